"""Benchmark: retrieval quality on the gold set, WordLlama vectors vs BM25 vs their RRF fusion.

Not a test. Extracts every sample book (samples/books), chunks it with the real tokenizer, and for
each query in tests/ingest/gold/queries.tsv ranks all chunks of all books. A query is answered when
a chunk of the expected book and chapter is retrieved:

* recall@5: the expected chapter owns one of the 5 best chunks;
* MRR: mean of 1 / rank of the first chunk from the expected chapter (0 beyond rank 100).

Retrievers: ``wordllama`` (cosine over WordLlamaEmbedder vectors, ranking.top_k), ``bm25`` (a tiny
Okapi BM25 over lower-cased words and CJK characters, k1=1.2, b=0.75: the stand-in for the
database's full-text index), ``hybrid`` (ranking.fuse of the two top-100 lists, k=60, then
ranking.boost_exact: the exact phrase, then all words first, as library.search does) and
``hashing`` (the test fake, as a floor). The baseline for ratios is BM25, measured in the same run.

    .venv/bin/python bench/bench_retrieval.py [--quick] [--verbose]
"""

from __future__ import annotations

import csv
import dataclasses
import math
import pathlib
import re
import sys
from collections import Counter, defaultdict

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
BOOKS = REPO / "samples" / "books"
GOLD = REPO / "tests" / "ingest" / "gold" / "queries.tsv"
DEPTH = 100
SIZES = (128, 256, 512)


@dataclasses.dataclass(frozen=True)
class GoldQuery:
    query: str
    book: str
    chapter: str
    index: int | None


@dataclasses.dataclass(frozen=True)
class Passage:
    book: str
    chapter_index: int
    chapter_title: str
    text: str


def load_gold(path: pathlib.Path = GOLD) -> list[GoldQuery]:
    rows = csv.reader((ln for ln in path.open(encoding="utf-8") if not ln.startswith("#")), delimiter="\t")
    return [GoldQuery(r[0], r[1], r[2], int(r[3]) if len(r) > 3 and r[3] else None) for r in rows if r]


def load_books() -> dict[str, object]:
    from agentic_pipeline.errors import BookError
    from agentic_pipeline.ingest.extract import extract

    books = {}
    for path in sorted(BOOKS.iterdir()):
        try:
            books[path.stem] = extract(path)
        except BookError as exc:
            print(f"skip {path.name}: {exc}", file=sys.stderr)
    return books


def passages(books: dict, count_tokens, max_tokens: int) -> list[Passage]:
    from agentic_pipeline.ingest import chunking

    out = []
    for stem, book in books.items():
        titles = {c.index: c.title for c in book.chapters}
        for chunk in chunking.chunk_chapters(book.chapters, max_tokens=max_tokens, overlap_tokens=max_tokens // 8,
                                             count_tokens=count_tokens, keep_code_whole=True, keep_tables_whole=True):
            out.append(Passage(stem, chunk.chapter_index, titles[chunk.chapter_index], chunk.text))
    return out


def is_answer(p: Passage, q: GoldQuery) -> bool:
    return p.book == q.book and q.chapter.lower() in p.chapter_title.lower() and q.index in (None, p.chapter_index)


def check_gold(gold: list[GoldQuery], books: dict) -> None:
    """Every gold row must name a chapter that exists, or the numbers mean nothing."""
    for q in gold:
        book = books.get(q.book)
        ok = book and any(is_answer(Passage(q.book, c.index, c.title, ""), q) for c in book.chapters)
        if not ok:
            raise SystemExit(f"gold row names no chapter: {q}")


# --------------------------------------------------------------------------- BM25


_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")


def bm25_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class BM25:
    """Okapi BM25 over an in-memory inverted index."""

    def __init__(self, docs: list[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        lengths = []
        for row, doc in enumerate(docs):
            counts = Counter(bm25_tokens(doc))
            lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                self.postings[term].append((row, tf))
        self.lengths = np.array(lengths, dtype=np.float64)
        self.avg = float(self.lengths.mean()) if docs else 0.0

    def rank(self, query: str, depth: int = DEPTH) -> list[int]:
        n = len(self.lengths)
        scores = np.zeros(n)
        for term in set(bm25_tokens(query)):
            posting = self.postings.get(term, [])
            if not posting:
                continue
            idf = math.log(1 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
            rows = np.array([r for r, _ in posting])
            tf = np.array([t for _, t in posting], dtype=np.float64)
            norm = self.k1 * (1 - self.b + self.b * self.lengths[rows] / self.avg)
            scores[rows] += idf * tf * (self.k1 + 1) / (tf + norm)
        hits = np.flatnonzero(scores > 0)
        return sorted(hits.tolist(), key=lambda r: (-scores[r], r))[:depth]


# --------------------------------------------------------------------------- evaluation


def vector_ranker(embedder, texts: list[str]):
    from agentic_pipeline.ingest import ranking

    matrix = embedder.embed(texts)
    return lambda query: [row for row, _ in ranking.top_k(embedder.embed([query])[0], matrix, DEPTH)]


def evaluate(ranked: list[list[int]], gold: list[GoldQuery], corpus: list[Passage]) -> tuple[float, float, list[int]]:
    """(recall@5, MRR, rank of the first answer per query, 0 = not found)."""
    firsts = []
    for rows, q in zip(ranked, gold):
        first = next((i for i, row in enumerate(rows, start=1) if is_answer(corpus[row], q)), 0)
        firsts.append(first)
    recall = sum(1 for f in firsts if 0 < f <= 5) / len(gold)
    mrr = sum(1 / f for f in firsts if f) / len(gold)
    return recall, mrr, firsts


def run_size(books: dict, gold: list[GoldQuery], max_tokens: int, verbose: bool) -> list[dict]:
    from agentic_pipeline.ingest import embed, ranking

    wordllama = embed.WordLlamaEmbedder().load()
    corpus = passages(books, wordllama.count_tokens, max_tokens)
    texts = [p.text for p in corpus]
    bm25 = BM25(texts)
    rankers = {
        "bm25": bm25.rank,
        "wordllama": vector_ranker(wordllama, texts),
        "hashing": vector_ranker(embed.HashingEmbedder(), texts),
    }
    ranked = {name: [rank(q.query) for q in gold] for name, rank in rankers.items()}
    ranked["hybrid"] = [  # what library.search does: fuse, then exact phrase / all words first
        [row for row, _ in ranking.boost_exact(ranking.fuse(b, v), dict(enumerate(texts)), q.query)[:DEPTH]]
        for b, v, q in zip(ranked["bm25"], ranked["wordllama"], gold)
    ]
    results = {name: evaluate(r, gold, corpus) for name, r in ranked.items()}
    phrase_rows = exact_phrases(texts, bm25, rankers["wordllama"])
    if verbose:
        print_detail(results, gold, max_tokens)
    base_recall, base_mrr, _ = results["bm25"]
    rows = []
    for name in ("bm25", "wordllama", "hybrid", "hashing"):
        recall, mrr, _ = results[name]
        note = f"{len(corpus)} chunks of <= {max_tokens} tokens, {len(gold)} queries"
        rows.append(_row(f"recall@5 {name} @{max_tokens}", recall, base_recall, note))
        rows.append(_row(f"MRR {name} @{max_tokens}", mrr, base_mrr, note))
    fused_only, boosted, n = phrase_rows
    rows.append(_row(f"exact phrase first, hybrid @{max_tokens}", boosted, fused_only,
                     f"{n} five-word phrases copied from the chunks; baseline: fusion without boost_exact"))
    return rows


def _holds(text: str, phrase: str) -> bool:
    """``text`` contains ``phrase``, case and spacing aside."""
    return " ".join(phrase.lower().split()) in " ".join(text.lower().split())


def exact_phrases(texts: list[str], bm25, vectors, n: int = 40, seed: int = 7) -> tuple[float, float, int]:
    """How often a chunk holding a phrase copied from the library comes first: fusion alone vs boost_exact.

    Five consecutive words from a random chunk (reproducible seed), searched as typed; a hit is a
    first result that contains the phrase. What a user pasting a remembered sentence expects.
    """
    import random

    from agentic_pipeline.ingest import ranking

    rng = random.Random(seed)
    lookup = dict(enumerate(texts))
    plain = exact = tried = 0
    while tried < n:
        words = texts[rng.randrange(len(texts))].split()
        if len(words) < 20:
            continue
        start = rng.randrange(len(words) - 5)
        query = " ".join(words[start:start + 5])
        fused = ranking.fuse(bm25.rank(query), vectors(query))
        plain += bool(fused) and _holds(texts[fused[0][0]], query)
        boosted = ranking.boost_exact(fused, lookup, query)
        exact += bool(boosted) and _holds(texts[boosted[0][0]], query)
        tried += 1
    return plain / n, exact / n, n


def _row(name: str, value: float, baseline: float, note: str) -> dict:
    row = {"name": name, "value": round(value, 3), "unit": "", "baseline": round(baseline, 3), "note": note}
    if baseline:
        row["ratio"] = round(value / baseline, 3)
    return row


def print_detail(results: dict, gold: list[GoldQuery], max_tokens: int) -> None:
    names = list(results)
    print(f"\nfirst-answer rank per query at {max_tokens} tokens (0 = not in top {DEPTH}): {' '.join(names)}")
    for i, q in enumerate(gold):
        ranks = " ".join(f"{results[n][2][i]:>4}" for n in names)
        print(f"  {ranks}  {q.query[:70]}")


def run(quick: bool = False, verbose: bool = False) -> list[dict]:
    books = load_books()
    gold = load_gold()
    check_gold(gold, books)
    rows = []
    for size in (256,) if quick else SIZES:
        rows.extend(run_size(books, gold, size, verbose))
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv, verbose="--verbose" in sys.argv):
        extra = "".join(f"  {k}={row[k]}" for k in ("baseline", "ratio", "note") if k in row)
        print(f"{row['name']:<28} {row['value']:>8}{extra}")
