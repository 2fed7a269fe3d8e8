"""Embedded prompt sets for `tollgate demo` (regenerate with `python -m tollgate.demo_data.generate`)."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
