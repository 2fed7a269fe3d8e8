"""Tollgate: load testing and production monitoring for LLM inference servers."""

__version__ = "0.1.0"
