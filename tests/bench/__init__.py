"""Benchmarks: `make bench` runs every `bench_*` function in `tests/bench/bench_*.py`."""
