"""Offline language detection from scripts and stopwords alone.

Language is decided in two steps: the dominant Unicode script settles ja / zh / ko / ru / el / ar / he
outright; Latin text is then told apart by counting very common function words per language. No model
files, no network: the tables below are the whole method. (Garbage detection is
``text_stats.garbage_ratio``, shared with the extractor.)
"""

from __future__ import annotations

import dataclasses
import re

_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the and of to in is that it was for with as on be are this by not or which you from".split()),
    "de": frozenset("der die und das ist nicht mit den ein eine auch sich von zu im dem wird sie es auf für".split()),
    "fr": frozenset("le la les et des est un une dans que pour pas qui sur du au avec ce il sont par".split()),
    "es": frozenset("el la los las y de que en un una es por con para no se del al su lo como".split()),
    "it": frozenset("il la di che e un una per non sono del della con si gli le nel anche come".split()),
    "pt": frozenset("o a os as de que e um uma para com não se do da em no na por são".split()),
    "nl": frozenset("de het een en van is dat niet op te zijn met voor die er ook als aan".split()),
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


@dataclasses.dataclass(frozen=True, slots=True)
class Detection:
    """The detected language (ISO 639-1, or "und" when undecidable) and how sure the detector is."""

    language: str
    confidence: float
    script: str


def script_of(char: str) -> str:
    """Name the script of one letter: latin, cyrillic, han, kana, hangul, greek, arabic, hebrew, other."""
    code = ord(char)
    if code < 0x250:
        return "latin"
    if 0x400 <= code < 0x530:
        return "cyrillic"
    if 0x3040 <= code < 0x3100 or 0x31F0 <= code < 0x3200 or 0xFF66 <= code < 0xFFA0:
        return "kana"
    if 0x3400 <= code < 0xA000 or 0xF900 <= code < 0xFB00:
        return "han"
    if 0xAC00 <= code < 0xD7B0 or 0x1100 <= code < 0x1200:
        return "hangul"
    if 0x370 <= code < 0x400:
        return "greek"
    if 0x600 <= code < 0x700:
        return "arabic"
    if 0x590 <= code < 0x600:
        return "hebrew"
    return "other"


def script_counts(text: str, limit: int = 200_000) -> dict[str, int]:
    """Count letters per script over the first ``limit`` characters."""
    counts: dict[str, int] = {}
    for char in text[:limit]:
        if char.isalpha():
            name = script_of(char)
            counts[name] = counts.get(name, 0) + 1
    return counts


def detect_language(text: str) -> Detection:
    """Detect the main language of ``text``; "und" with low confidence when the evidence is thin."""
    counts = script_counts(text)
    total = sum(counts.values())
    if total < 20:
        return Detection("und", 0.0, "none")
    script, top = max(counts.items(), key=lambda kv: kv[1])
    share = top / total
    if counts.get("kana", 0) > 0.05 * total:
        return Detection("ja", min(1.0, (counts["kana"] + counts.get("han", 0)) / total), "kana")
    simple = {"han": "zh", "hangul": "ko", "cyrillic": "ru", "greek": "el", "arabic": "ar", "hebrew": "he"}
    if script in simple:
        return Detection(simple[script], round(share, 3), script)
    if script != "latin":
        return Detection("und", 0.0, script)
    return _detect_latin(text, share)


def _detect_latin(text: str, share: float) -> Detection:
    """Tell Latin-script languages apart by the share of words that are each language's stopwords."""
    words = [w.lower() for w in _WORD.findall(text[:200_000])]
    if not words:
        return Detection("und", 0.0, "latin")
    hits = {lang: sum(1 for w in words if w in stops) for lang, stops in _STOPWORDS.items()}
    best, score = max(hits.items(), key=lambda kv: kv[1])
    rate = score / len(words)
    if rate < 0.05:
        return Detection("und", round(rate, 3), "latin")
    second = max((v for k, v in hits.items() if k != best), default=0)
    margin = (score - second) / max(score, 1)
    return Detection(best, round(min(1.0, share * (0.5 + margin)), 3), "latin")


def normalise_language(tag: str | None) -> str | None:
    """Reduce a metadata language tag ("en-US", "de_DE", "ja") to its primary subtag, lower case."""
    if not tag:
        return None
    primary = re.split(r"[-_]", tag.strip())[0].lower()
    return primary or None
