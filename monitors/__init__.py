"""monitors component."""
