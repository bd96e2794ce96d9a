"""Content hashing of book files: the identity used to spot duplicates and changed files."""

from __future__ import annotations

import errno
import hashlib
import os
import stat

BLOCK_SIZE = 1 << 20  # 1 MiB: large enough to be fast, small enough to keep memory flat


class NotRegularFile(OSError):
    """The path is a FIFO, a device, a socket or a folder: nothing to hash (and reading could block forever)."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks so big books never sit in memory.

    Opened without blocking and checked to be a regular file before any read: opening a FIFO
    would otherwise wait for a writer forever. Raises ``NotRegularFile`` (an ``OSError``) for anything else.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file (a folder, FIFO, device or socket)", str(path))
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    digest = hashlib.sha256()
    with handle:
        while block := handle.read(BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest()
