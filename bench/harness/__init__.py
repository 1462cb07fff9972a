"""Helpers shared by the benchmark scripts in ``bench/`` (not a benchmark itself)."""
