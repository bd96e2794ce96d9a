"""Ingestion stages: hashing, extraction, classification, strategies, chunking, validation, embedding, search.

Each stage is a plain function over real files or the extracted model; none touches the database.
"""
