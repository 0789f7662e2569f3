"""The job system's vocabulary: contract, record and typed transitions, rules, principal, access.

Pure: no storage SDK, no HTTP, no I/O (an import contract in pyproject.toml holds it to that).
"""
