"""Refuse text layers that decode to garbage, before anything downstream embeds them."""

from __future__ import annotations

from pathlib import Path

from agentic_pipeline import errors
from agentic_pipeline.ingest import text_stats

#: characters judged per book: ~8,000 words from 20 places, enough for a ratio stable to a
#: percent or so (the limit is tens of percent), cheap on a 2,000-page PDF
SAMPLE_CHARS = 48_000


def check_garbage(text: str, path: Path, max_ratio: float) -> None:
    """Raise GarbageText when too many tokens of a sample of ``text`` look mis-decoded."""
    ratio = text_stats.garbage_ratio(text_stats.sample_text(text, budget=SAMPLE_CHARS))
    if ratio > max_ratio:
        raise errors.GarbageText(
            f"the text layer decodes to garbage: {path.name}: {ratio:.0%} of words look mis-decoded "
            f"(wrong font encoding or glyph names instead of letters)",
            hint="the text needs OCR or a better source file",
            path=str(path),
            garbage_ratio=round(ratio, 3),
        )
