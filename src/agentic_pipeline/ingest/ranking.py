"""Rank chunks for a query: vector top-k, and reciprocal-rank fusion with full-text results (pure).

No SQL here: the search module loads the vectors (or asks the database's full-text index) and
hands the numbers to these functions, so ranking is tested without a database.

Why fuse? The two retrievers fail differently. Full text (FTS5 / tsvector, BM25-like) is exact:
it finds the rare name, the function ``read.table`` or the error string, but misses a paraphrase.
Static word vectors (WordLlama) find the paraphrase and tolerate spelling and inflection, but blur
rare exact terms into their neighbours. Their scores are on unrelated scales (BM25 is unbounded,
cosine is in [-1, 1]), so instead of calibrating and adding scores we add ``1 / (k + rank)`` from
each list: reciprocal-rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009). It needs no training,
rewards items both lists like, and ``k = 60`` (the paper's value) keeps one list's first place
from drowning the other's. The measured effect on our gold set is in docs/embedding.md.
"""

from __future__ import annotations

import re

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

import numpy as np

Id = TypeVar("Id", bound=Hashable)


def top_k(query_vec: np.ndarray, matrix: np.ndarray, k: int) -> list[tuple[int, float]]:
    """Rows of ``matrix`` most similar to ``query_vec``, best first, as (row, cosine).

    Both sides are expected L2-normalised (the embedder guarantees it), so cosine is the dot
    product. ``argpartition`` picks the k best in O(n) before sorting only those; ties are
    broken by the lower row number so results are deterministic.
    """
    n = 0 if matrix.size == 0 else matrix.shape[0]
    k = min(k, n)
    if k <= 0:
        return []
    scores = matrix @ np.asarray(query_vec, dtype=matrix.dtype)
    if k < n:  # every row tied with the k-th best stays a candidate, so ties break by row
        kth = scores[np.argpartition(-scores, k - 1)[k - 1]]
        best = np.flatnonzero(scores >= kth)
    else:
        best = np.arange(n)
    order = sorted(best.tolist(), key=lambda row: (-float(scores[row]), row))[:k]
    return [(row, float(scores[row])) for row in order]


def fuse(
    fts_ranked_ids: Sequence[Id],
    vector_ranked_ids: Sequence[Id],
    k: int = 60,
    *,
    limit: int | None = None,
) -> list[tuple[Id, float]]:
    """Reciprocal-rank fusion of two best-first id lists: score = sum of 1 / (k + rank), rank from 1.

    An id in both lists outranks one in a single list at the same place. Ties keep the order of
    first appearance (full text first), so the result is deterministic.
    """
    return rrf([fts_ranked_ids, vector_ranked_ids], k=k, limit=limit)


def rrf(ranked_lists: Iterable[Sequence[Id]], *, k: int = 60, limit: int | None = None) -> list[tuple[Id, float]]:
    """Reciprocal-rank fusion of any number of best-first lists (duplicates within a list count once)."""
    if k < 0:
        raise ValueError("rrf k must be >= 0")
    scores: dict[Id, float] = {}
    for ranked in ranked_lists:
        seen: set[Id] = set()
        for rank, item in enumerate(ranked, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    first_seen = {item: i for i, item in enumerate(scores)}
    fused = sorted(scores.items(), key=lambda pair: (-pair[1], first_seen[pair[0]]))
    return fused if limit is None else fused[:limit]


#: added to the fused score of a chunk holding the query as written, or every query word (RRF scores stay < 0.05)
PHRASE_BONUS, ALL_TERMS_BONUS = 1.0, 0.5
_SPACES = re.compile(r"\s+")
_WORDS = re.compile(r"\w+")


def boost_exact(fused: Sequence[tuple[Id, float]], texts: Mapping[Id, str], query: str) -> list[tuple[Id, float]]:
    """Re-rank fused results so exact matches come first: the phrase as written, then every word of it.

    Reciprocal-rank fusion rewards agreement: a chunk both retrievers half-like beats the one
    holding the very sentence typed. For a query of two or more words, a chunk containing the whole
    phrase (case and spacing aside) ranks above all others, then chunks with every word; the fused
    score orders each tier. One-word queries are left as fused (every full-text hit has the word).
    """
    words = [w.lower() for w in _WORDS.findall(query)]
    if len(words) < 2:
        return list(fused)
    phrase = _SPACES.sub(" ", query.strip().lower())
    out = []
    for item, score in fused:
        text = " ".join((texts.get(item) or "").lower().split())  # str.split: several times faster than a regex
        if phrase in text:
            score += PHRASE_BONUS
        elif all(w in text for w in words) and set(words) <= set(_WORDS.findall(text)):  # substrings first: cheap
            score += ALL_TERMS_BONUS
        out.append((item, score))
    out.sort(key=lambda pair: -pair[1])  # stable: ties keep the fused order
    return out
