"""The app's pages, shared by app.py (navigation) and pages that link to each other."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

VIEWS = Path(__file__).parent / "views"
PAGES = {
    "overview": ("Overview", ":material/monitor_heart:"),
    "load_tests": ("Load tests", ":material/speed:"),
    "live": ("Live", ":material/timeline:"),
    "drift": ("Drift", ":material/compare_arrows:"),
    "alerts": ("Alerts", ":material/notifications:"),
}


def page(name: str) -> st.Page:
    title, icon = PAGES[name]
    return st.Page(
        VIEWS / f"{name}.py",
        title=title,
        icon=icon,
        url_path=name.replace("_", "-"),
        default=name == "overview",
    )
