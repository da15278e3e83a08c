"""Orchestration: the state machine (render, validate), its local executor, and starting,
following, resuming and cancelling runs on either target."""
