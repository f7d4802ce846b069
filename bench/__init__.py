"""Benchmarks: run each module alone, e.g. `.venv/bin/python -m bench.bench_import --rows 100000`."""
