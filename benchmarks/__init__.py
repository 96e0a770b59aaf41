"""Benchmarks: ganmetrics side by side with the peer libraries (see README.md here)."""
