"""Classify a book by type from its text alone: measured signals, a hand-weighted scorer, calibrated softmax.

Why hand weights: the corpus has about twenty books and some types have one example, so any fitted
per-type model would memorise titles. Each type's score is a short, readable sum of
``weight * log1p(signal / scale)`` terms (``WEIGHTS``); the softmax temperature is the only fitted number,
chosen on independent slices of the corpus books so that the confidence reads as a probability
(see docs/classification.md and bench/bench_classify.py). The file name, path and metadata title are never
looked at, so renaming a file cannot change its class.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from agentic_pipeline.ingest import classify_signals
from agentic_pipeline.ingest.model import ExtractedBook

BOOK_TYPES: tuple[str, ...] = (
    "technical_tutorial",
    "technical_reference",
    "textbook",
    "literature",
    "narrative_nonfiction",
    "periodical",
    "academic_paper",
    "unknown",
)

#: Softmax temperature, fitted on corpus slices by bench/bench_classify.py (minimum log-loss).
TEMPERATURE = 0.6
#: Below this many words there is nothing to measure: the answer is "unknown".
MIN_WORDS = 150
#: When the best type's probability is below this, say "unknown" rather than guess.
MIN_CONFIDENCE = 0.30
#: How much text ``classify`` reads: evenly spaced windows, so a 2,400-page manual costs the same as a novella.
SAMPLE_CHARS = 200_000
SAMPLE_WINDOWS = 40

# (signal, scale, weight): each term adds weight * log1p(signal / scale) to the type's score.
Term = tuple[str, float, float]
WEIGHTS: dict[str, tuple[Term, ...]] = {
    "technical_tutorial": (
        ("code_line_ratio", 0.05, 1.0),
        ("prompt_per_kline", 5.0, 0.4),
        ("tech_tokens_per_kword", 10.0, 0.6),
        ("second_person_per_kword", 2.0, 0.8),
        ("example_per_kword", 1.0, 0.8),
        ("section_numbers_per_kline", 20.0, 0.4),
        ("api_headers_per_kline", 3.0, -0.8),
        ("spec_terms_per_kword", 5.0, -0.5),
        ("narrative_per_kword", 5.0, -0.8),
        ("textbook_terms_per_kword", 3.0, -0.6),
    ),
    "technical_reference": (
        ("code_line_ratio", 0.05, 0.8),
        ("tech_tokens_per_kword", 10.0, 0.6),
        ("api_headers_per_kline", 3.0, 1.5),
        ("tables_per_kword", 0.3, 1.0),
        ("spec_terms_per_kword", 5.0, 1.0),
        ("prompt_per_kline", 5.0, 0.3),
        ("section_numbers_per_kline", 20.0, 0.4),
        ("second_person_per_kword", 2.0, -0.5),
        ("example_per_kword", 1.0, -0.4),
        ("narrative_per_kword", 5.0, -0.8),
        ("textbook_terms_per_kword", 3.0, -0.6),
    ),
    "textbook": (
        ("textbook_terms_per_kword", 2.0, 1.6),
        ("math_per_kchar", 0.5, 0.8),
        ("example_per_kword", 1.0, 0.4),
        ("second_person_per_kword", 2.0, 0.3),
        ("section_numbers_per_kline", 20.0, 0.3),
        ("code_line_ratio", 0.05, -0.6),
        ("narrative_per_kword", 5.0, -0.6),
    ),
    "literature": (
        ("narrative_per_kword", 5.0, 1.0),
        ("first_person_per_kword", 5.0, 0.6),
        ("said_per_kword", 1.0, 0.8),
        ("quotes_per_kword", 5.0, 0.4),
        ("stage_per_kline", 2.0, 1.2),
        ("speaker_per_kline", 30.0, 0.6),
        ("verse_ratio", 0.1, 1.0),
        ("tech_tokens_per_kword", 5.0, -0.8),
        ("code_line_ratio", 0.05, -0.6),
        ("section_numbers_per_kline", 10.0, -0.6),
        ("citations_per_kword", 0.5, -0.6),
    ),
    "narrative_nonfiction": (
        ("narrative_per_kword", 5.0, 0.8),
        ("first_person_per_kword", 5.0, 0.3),
        ("citations_per_kword", 0.5, 0.5),
        ("chapter_heads_per_kword", 0.1, 0.3),
        ("said_per_kword", 1.0, -0.3),
        ("verse_ratio", 0.1, -0.8),
        ("stage_per_kline", 2.0, -1.0),
        ("tech_tokens_per_kword", 5.0, -0.8),
        ("code_line_ratio", 0.05, -0.6),
    ),
    "periodical": (
        ("issue_marks_per_kword", 0.3, 1.5),
        ("periodical_per_kword", 2.0, 1.0),
        ("citations_per_kword", 1.0, 0.2),
        ("narrative_per_kword", 5.0, -0.4),
        ("api_headers_per_kline", 3.0, -0.6),
    ),
    "academic_paper": (
        ("citations_per_kword", 1.0, 1.2),
        ("academic_heads_per_kline", 2.0, 0.8),
        ("section_numbers_per_kline", 20.0, 0.3),
        ("math_per_kchar", 0.5, 0.2),
        ("issue_marks_per_kword", 0.3, -0.5),
        ("narrative_per_kword", 5.0, -0.6),
        ("second_person_per_kword", 2.0, -0.4),
        ("api_headers_per_kline", 3.0, -0.6),
    ),
}
#: A prior per type, in score units: "unknown" only wins when nothing else shows any evidence.
BIASES: dict[str, float] = {"narrative_nonfiction": -0.6, "unknown": 0.8}


@dataclasses.dataclass(frozen=True, slots=True)
class Classification:
    """The type of a book, how likely that is, why, and the measurements behind it."""

    book_type: str
    confidence: float
    reasoning: str
    signals: dict[str, float]
    probabilities: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def sample_text(text: str, budget: int = SAMPLE_CHARS, windows: int = SAMPLE_WINDOWS) -> str:
    """Take ``windows`` evenly spaced pieces of ``text`` totalling ``budget`` characters (all of it if shorter)."""
    if len(text) <= budget:
        return text
    step, width = len(text) // windows, budget // windows
    return "\n".join(text[i * step : i * step + width] for i in range(windows))


def score(signals: dict[str, float]) -> tuple[dict[str, float], dict[str, list[tuple[str, float]]]]:
    """Score every type from the signals; also return each type's terms so the reasoning can cite them."""
    scores: dict[str, float] = {}
    terms: dict[str, list[tuple[str, float]]] = {}
    for book_type, weights in WEIGHTS.items():
        parts = [(name, weight * math.log1p(signals.get(name, 0.0) / scale)) for name, scale, weight in weights]
        scores[book_type] = sum(v for _, v in parts) + BIASES.get(book_type, 0.0)
        terms[book_type] = parts
    scores["unknown"] = BIASES["unknown"]
    return scores, terms


def softmax(scores: dict[str, float], temperature: float = TEMPERATURE) -> dict[str, float]:
    """Turn scores into probabilities; a higher temperature spreads them out."""
    top = max(scores.values())
    exp = {k: math.exp((v - top) / temperature) for k, v in scores.items()}
    total = sum(exp.values())
    return {k: v / total for k, v in exp.items()}


def classify_text(text: str, *, temperature: float = TEMPERATURE) -> Classification:
    """Classify raw text (a whole book or a slice of one); ``classify`` is this over the book's chapters."""
    return decide(classify_signals.measure(sample_text(text)), temperature=temperature)


def decide(signals: dict[str, float], *, temperature: float = TEMPERATURE) -> Classification:
    """Turn measured signals into a classification (cheap: the benchmark calls it once per temperature)."""
    if signals["words"] < MIN_WORDS:
        reason = f"only {int(signals['words'])} words of text: too little signal to classify"
        return Classification("unknown", 0.1, reason, signals, {"unknown": 1.0})
    scores, terms = score(signals)
    probs = softmax(scores, temperature)
    best = max(probs, key=lambda k: probs[k])
    confidence = probs[best]
    if best != "unknown" and confidence < MIN_CONFIDENCE:
        reason = f"no type stands out (best {best} at {confidence:.2f}); " + _explain(best, terms[best])
        return Classification("unknown", round(probs["unknown"], 3), reason, signals, _rounded(probs))
    reason = _explain(best, terms.get(best, []))
    return Classification(best, round(confidence, 3), reason, signals, _rounded(probs))


def classify(book: ExtractedBook, *, temperature: float = TEMPERATURE) -> Classification:
    """Classify an extracted book from its chapter text (never its file name, path or title)."""
    return classify_text(book.text, temperature=temperature)


def _explain(book_type: str, terms: list[tuple[str, float]]) -> str:
    """Name the three terms that pushed hardest for the type and the strongest one against it."""
    if book_type == "unknown" or not terms:
        return "no structural signal stood out"
    ranked = sorted(terms, key=lambda t: t[1], reverse=True)
    pro = ", ".join(f"{name} (+{value:.2f})" for name, value in ranked[:3] if value > 0)
    con = [f"{name} ({value:.2f})" for name, value in ranked[::-1][:1] if value < 0]
    text = f"{book_type}: for {pro or 'nothing strong'}"
    return text + (f"; against {con[0]}" if con else "")


def _rounded(probs: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in sorted(probs.items(), key=lambda kv: -kv[1])}
