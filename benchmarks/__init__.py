"""Benchmark scripts (`make bench`) and their parts."""
