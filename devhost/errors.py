"""The one exception type for problems the host finds while starting (as the real host's startup errors)."""

from __future__ import annotations


class DevHostError(Exception):
    """A configuration or indexing problem that stops the host from starting."""
