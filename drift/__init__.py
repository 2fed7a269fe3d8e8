"""drift component."""
