"""Benchmark suite of the execution engine (see bench/README.md)."""
