"""reference_server component."""
