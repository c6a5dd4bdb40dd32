"""Benchmarks run on demand (`make bench` or `python -m bench.NAME`); results go to bench/results/."""
