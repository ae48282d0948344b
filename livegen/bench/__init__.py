"""Benchmarks: each module has `main(argv) -> int` and prints figures beside a same-run baseline."""
