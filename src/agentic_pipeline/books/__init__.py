"""Books as a person sees them: list by filter, show one in full, correct its metadata (``operations``)."""
