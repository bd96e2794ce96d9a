"""The pipeline's state machine (pure)."""
