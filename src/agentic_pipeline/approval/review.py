"""Sample passages from the start, middle and end of a book: what the review page adds to ``books.show``.

``books.show`` gives everything else a person needs to decide (type, reasoning, probabilities, checks failed
first, chapters with word counts); reading a few passages tells whether the text came out right.
"""

from __future__ import annotations

from typing import Any
from agentic_pipeline.db import library_store

#: characters of each sample passage
PASSAGE_CHARS = 700


def sample_passages(app, pipeline_id: int) -> list[dict[str, str]]:
    """Samples of the stored text of the pipeline's book (none before it is processed)."""
    with app.db.read() as conn:
        book = library_store.book_for_pipeline(conn, pipeline_id)
        chapters = library_store.load_chapters(conn, book["id"]) if book else []
    return passages(chapters)


def passages(chapters: list[dict[str, Any]], width: int = PASSAGE_CHARS) -> list[dict[str, str]]:
    """Samples from the start, middle and end of the book's text (pure)."""
    text = "\n\n".join(c["text"] for c in chapters).strip()
    if not text:
        return []
    if len(text) <= 3 * width:
        return [{"where": "whole text", "text": text}]
    mid = len(text) // 2 - width // 2
    return [{"where": "start", "text": _words(text[:width])}, {"where": "middle", "text": _words(text[mid:mid + width])},
            {"where": "end", "text": _words(text[-width:])}]


def _words(piece: str) -> str:
    """Trim a cut word at either end of ``piece``."""
    piece = piece.strip()
    first, _, rest = piece.partition(" ")
    body, _, _last = rest.rpartition(" ")
    return f"… {body} …" if body else piece

