"""Benchmarks: each module has `main(argv) -> int`, prints a rich table, writes reports/bench/<name>.json."""
