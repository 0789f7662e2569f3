"""The job system: contract, status store, queues, worker runtime, auth, errors, config."""
