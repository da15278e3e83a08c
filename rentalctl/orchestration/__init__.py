"""Orchestration: the state machine, its local executor, run records and the lock."""
