"""Benchmarks a user re-runs to check a claim, side by side with the naive way; each writes its section of docs/BENCHMARKS.md."""
