"""Size bounds every extractor honours; the orchestrator adds its own time limit on top."""

from __future__ import annotations

import dataclasses

MIB = 1 << 20


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one extraction may read.

    ``max_bytes`` caps the file size, ``max_pages`` the PDF page count, ``max_unpacked`` the
    sum of the declared uncompressed sizes in an EPUB (zip-bomb guard), ``max_garbage_ratio``
    the share of mis-decoded tokens tolerated before the text layer counts as garbage.
    """

    max_bytes: int = 512 * MIB
    max_pages: int = 10_000
    max_unpacked: int = 200 * MIB
    max_garbage_ratio: float = 0.3
