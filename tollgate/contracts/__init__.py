"""Data contracts between Tollgate components (see docs/design/architecture.md).

Light on purpose: standard library and numpy only, so every component (and any
third-party adapter) can import it without pulling in torch, Locust or Streamlit.
"""

from tollgate.contracts.capture import CAPTURE_SCHEMA_VERSION, validate_capture_record
from tollgate.contracts.drift_result import DRIFT_SCHEMA_VERSION
from tollgate.contracts.monitor_store import MONITOR_STORE_SCHEMA_VERSION, SERIES_NAMES
from tollgate.contracts.run_folder import RUN_SCHEMA_VERSION, validate_summary
from tollgate.contracts.sketch import SKETCH_DIM, prompt_profile, prompt_sketch, text_of_messages

__all__ = [
    "CAPTURE_SCHEMA_VERSION",
    "DRIFT_SCHEMA_VERSION",
    "MONITOR_STORE_SCHEMA_VERSION",
    "RUN_SCHEMA_VERSION",
    "SERIES_NAMES",
    "SKETCH_DIM",
    "prompt_profile",
    "prompt_sketch",
    "text_of_messages",
    "validate_capture_record",
    "validate_summary",
]
