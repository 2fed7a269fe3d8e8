"""Exit codes of `tollgate drift`: 0 no drift, 1 drift (check only), 2 bad input (unreadable profile or
live data, bad flags, an output folder that cannot be written)."""

EXIT_OK, EXIT_DRIFT, EXIT_BAD_INPUT = 0, 1, 2
