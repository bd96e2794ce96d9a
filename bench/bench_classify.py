"""Benchmark: classification accuracy and calibration over ../shared/corpus, whole books and slices.

Not a test. Prints accuracy, expected calibration error (ECE) and a reliability table for
(a) each whole book and (b) independent slices of every book (``SLICES`` evenly spaced windows of
``SLICE_CHARS`` characters), which gives ~10x more samples than the ~20 books. The softmax temperature is
fitted on slices leave-one-book-out (the held-out book's slices never see their own fit), and the
temperature fitted on all books is reported so ``classify.TEMPERATURE`` can be set from it.
The baseline is the majority class (always "technical_tutorial"), measured in the same run.

    .venv/bin/python bench/bench_classify.py [--quick] [--verbose]
"""

from __future__ import annotations

import csv
import math
import pathlib
import sys
from collections.abc import Iterable

from agentic_pipeline.ingest import classify, classify_signals

CORPUS = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
SLICES = 8
SLICE_CHARS = 10_000
BINS = 5
TEMPERATURES = [round(0.3 + 0.1 * i, 1) for i in range(28)]


def load_corpus(quick: bool = False) -> list[tuple[str, str, str]]:
    """Extract every readable corpus book: (file, expected type, text). Unreadable books are skipped."""
    from agentic_pipeline.errors import BookError
    from agentic_pipeline.ingest.extract import extract

    rows = list(csv.DictReader((CORPUS / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t"))
    seen_hashes: set[str] = set()
    books = []
    for row in rows:
        if row["file"].startswith("broken/") or row["sha256"] in seen_hashes:
            continue
        seen_hashes.add(row["sha256"])
        if quick and int(row["bytes"]) > 2_000_000:
            continue
        try:
            book = extract(CORPUS / row["file"])
        except BookError as exc:
            print(f"skip {row['file']}: {exc}", file=sys.stderr)
            continue
        books.append((row["file"], row["expected_book_type"], book.text))
    return books


def slices(text: str, n: int = SLICES, chars: int = SLICE_CHARS) -> list[str]:
    """Cut ``n`` evenly spaced, non-overlapping windows of ``chars`` characters (fewer for short books).

    Characters, not words, so that Japanese (no spaces) is sliced like everything else.
    """
    count = min(n, len(text) // chars)
    if count == 0:
        return []
    step = len(text) // count
    return [text[i * step : i * step + chars] for i in range(count)]


def reliability(samples: Iterable[tuple[float, bool]], bins: int = BINS) -> tuple[float, list[dict]]:
    """Expected calibration error and the per-bin table (count, mean confidence, accuracy)."""
    samples = list(samples)
    table, ece = [], 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in samples if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if not inside:
            continue
        conf = sum(c for c, _ in inside) / len(inside)
        acc = sum(ok for _, ok in inside) / len(inside)
        ece += len(inside) / len(samples) * abs(conf - acc)
        table.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": len(inside), "confidence": round(conf, 3), "accuracy": round(acc, 3)})
    return round(ece, 4), table


def log_loss(items: list[tuple[dict, str]], temperature: float) -> float:
    """Mean negative log-likelihood of the expected types at ``temperature`` over (signals, expected) pairs."""
    total = 0.0
    for signals, expected in items:
        result = classify.decide(signals, temperature=temperature)
        total -= math.log(max(result.probabilities.get(expected, 0.0), 1e-6))
    return total / max(len(items), 1)


def fit_temperature(items: list[tuple[dict, str]]) -> float:
    return min(TEMPERATURES, key=lambda t: log_loss(items, t))


def evaluate(books: list[tuple[str, str, str]], verbose: bool = False) -> list[dict]:
    """Whole-book and slice accuracy/ECE, plus leave-one-book-out temperature calibration on slices."""
    results: list[dict] = []
    whole = [(name, expected, classify.classify_text(text)) for name, expected, text in books]
    if verbose:
        for name, expected, c in whole:
            mark = "ok " if c.book_type == expected else "BAD"
            print(f"{mark} {name:28} expected={expected:20} got={c.book_type:20} conf={c.confidence:.2f}  {c.reasoning}")
    acc = sum(c.book_type == e for _, e, c in whole) / len(whole)
    ece, table = reliability((c.confidence, c.book_type == e) for _, e, c in whole)
    majority = max(set(e for _, e, _ in whole), key=lambda t: sum(e == t for _, e, _ in whole))
    base = sum(e == majority for _, e, _ in whole) / len(whole)
    results += [
        {"name": "books", "value": len(whole), "unit": "count"},
        {"name": "book_accuracy", "value": round(acc, 3), "unit": "fraction", "baseline": round(base, 3),
         "ratio": round(acc / base, 2) if base else None, "note": f"baseline: always {majority}"},
        {"name": "book_ece", "value": ece, "unit": "fraction", "note": str(table)},
    ]
    per_book = {
        name: [(classify_signals.measure(s), expected) for s in slices(text)] for name, expected, text in books
    }
    for name, expected, c in whole:
        hits = sum(classify.decide(sig).book_type == expected for sig, _ in per_book[name])
        results.append({"name": f"book:{name}", "value": c.confidence, "unit": "confidence",
                        "note": f"expected={expected} got={c.book_type} slices_correct={hits}/{len(per_book[name])}"})
    all_items = [item for items in per_book.values() for item in items]
    results += _slice_results(all_items, classify.TEMPERATURE, "slices_current_T")
    fitted = fit_temperature(all_items)
    results.append({"name": "fitted_temperature_all", "value": fitted, "unit": "T"})
    loo = []
    for name, items in per_book.items():
        rest = [item for other, its in per_book.items() if other != name for item in its]
        t = fit_temperature(rest)
        loo += [(classify.decide(s, temperature=t), e) for s, e in items]
    loo_acc = sum(c.book_type == e for c, e in loo) / max(len(loo), 1)
    loo_ece, loo_table = reliability((c.confidence, c.book_type == e) for c, e in loo)
    results += [
        {"name": "slices_loo_accuracy", "value": round(loo_acc, 3), "unit": "fraction", "note": f"n={len(loo)}"},
        {"name": "slices_loo_ece", "value": loo_ece, "unit": "fraction", "note": str(loo_table)},
    ]
    return results


def _slice_results(items: list[tuple[dict, str]], temperature: float, label: str) -> list[dict]:
    predictions = [(classify.decide(s, temperature=temperature), e) for s, e in items]
    acc = sum(c.book_type == e for c, e in predictions) / max(len(predictions), 1)
    ece, table = reliability((c.confidence, c.book_type == e) for c, e in predictions)
    return [
        {"name": f"{label}_accuracy", "value": round(acc, 3), "unit": "fraction", "note": f"n={len(predictions)} T={temperature}"},
        {"name": f"{label}_ece", "value": ece, "unit": "fraction", "note": str(table)},
    ]


def run(quick: bool = False, verbose: bool = False) -> list[dict]:
    if not (CORPUS / "MANIFEST.tsv").exists():
        return [{"name": "skipped", "value": 0, "unit": "", "note": f"no corpus at {CORPUS}"}]
    return evaluate(load_corpus(quick), verbose=verbose)


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv, verbose="--verbose" in sys.argv):
        print(row)
