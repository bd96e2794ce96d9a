"""Content hashing of book files: the identity used to spot duplicates and changed files."""

from __future__ import annotations

import hashlib
import os

BLOCK_SIZE = 1 << 20  # 1 MiB: large enough to be fast, small enough to keep memory flat


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks so big books never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest()
