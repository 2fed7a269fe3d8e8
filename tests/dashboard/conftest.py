"""Fixture data for the dashboard tests: generated once per session by dashboards.sample_data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboards.sample_data import generate
from dashboards.settings import DATA_ENV

VIEWS = Path(__file__).resolve().parents[2] / "dashboards" / "views"
APP = VIEWS.parent / "app.py"


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    generate(root, days=0.25, n_requests=20_000, n_targets=4)
    return root


@pytest.fixture
def open_page(monkeypatch):
    """open_page(root, "live", range="1 h") -> AppTest that has run the page on `root`."""

    def _open(root: Path, name: str, **query: str) -> AppTest:
        monkeypatch.setenv(DATA_ENV, str(root))
        at = AppTest.from_file(str(APP if name == "app" else VIEWS / f"{name}.py"), default_timeout=60)
        for key, value in query.items():
            at.query_params[key] = value
        return at.run()

    return _open


def figures(at: AppTest) -> list[dict]:
    """The plotly figures on the page, decoded."""
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def page_text(at: AppTest) -> str:
    """Everything the page sent to the browser, as text (for secret checks)."""
    protos = [str(getattr(el, "proto", "")) for el in at._tree]
    frames = [df.value.to_csv() for df in at.dataframe]
    return "\n".join(protos + frames)
