"""Logs with the job's dimensions, and W3C traces across HTTP, queue and outcome."""
