"""Benchmarks run by ``make bench`` (``python -m benchmarks.run``); timings are printed as ratios."""
