"""A seeded fault-injection run against devhost and Azurite, and its history checker (``python -m chaos``)."""
