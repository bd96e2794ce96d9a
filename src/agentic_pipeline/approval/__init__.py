"""Approve, reject, roll back; the autonomy policy (pure, fail closed) and its operations."""
