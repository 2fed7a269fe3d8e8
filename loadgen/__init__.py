"""loadgen component."""
