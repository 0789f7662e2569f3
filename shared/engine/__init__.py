"""The only code that changes job state: the lifecycle owner and its callers (worker, lease,
poison, sweep, submit, actions), and the process-wide runtime that wires them to storage."""
