"""The priority queue: priority rules and aging (pure) and the operations that change priorities."""
