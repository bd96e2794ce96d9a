"""agentic-pipeline: turn a folder of books into a searchable library, unattended."""
__version__ = "0.1.0"
