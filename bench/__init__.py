"""Benchmarks: the app's submit and worker paths against a raw-SDK baseline, in one process.

Run with ``make bench`` (or ``.venv/bin/python -m bench --help``); see bench/README.md.
"""
