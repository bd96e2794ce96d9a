"""Batch operations: one filter (``filters.BatchFilter``), evaluated in SQL; plan, then apply."""
