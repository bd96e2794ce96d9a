"""The searchable library: hybrid search over the chunks of completed books."""
