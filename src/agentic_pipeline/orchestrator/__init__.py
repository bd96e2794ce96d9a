"""Drives books through the states: stages, process_one, workers, retries, maintenance."""
