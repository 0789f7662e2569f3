"""Persistence: the status table, the job list, the queues, storage clients and tenant data.

A few small primitives each, returning domain types (records, history entries), never raw
entities; no job logic and no API errors (``shared/engine`` decides, this layer writes).
"""
