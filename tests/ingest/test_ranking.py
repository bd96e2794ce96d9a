"""Ranking: exact vector top-k against a brute-force sort, and reciprocal-rank fusion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentic_pipeline.ingest import embed, ranking


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return embed.normalize_rows(rng.standard_normal((n, dim)).astype(np.float32))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), k=st.integers(0, 40), seed=st.integers(0, 10_000))
def test_top_k_equals_a_full_sort(n, k, seed):
    matrix = unit_rows(n, 16, seed)
    query = unit_rows(1, 16, seed + 1)[0]
    got = ranking.top_k(query, matrix, k)
    scores = matrix @ query
    expected = sorted(range(n), key=lambda r: (-scores[r], r))[:k]
    assert [row for row, _ in got] == expected
    assert all(abs(score - float(scores[row])) < 1e-6 for row, score in got)


def test_top_k_on_real_embeddings_finds_the_duplicate():
    fake = embed.HashingEmbedder()
    texts = ["vectors and matrices", "romeo and juliet", "the waste land", "state machines"]
    matrix = fake.embed(texts)
    (row, score), *_ = ranking.top_k(fake.embed(["juliet and romeo"])[0], matrix, 2)
    assert row == 1 and score == pytest.approx(1.0)


def test_top_k_ties_break_by_row():
    matrix = np.ones((5, 2), dtype=np.float32) / np.sqrt(2)
    assert [r for r, _ in ranking.top_k(matrix[0], matrix, 3)] == [0, 1, 2]


def test_fuse_rewards_agreement():
    fused = ranking.fuse(["a", "b", "c"], ["c", "d", "a"])
    ids = [i for i, _ in fused]
    assert ids[:2] == ["a", "c"]  # in both lists
    assert set(ids) == {"a", "b", "c", "d"}
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 63)


def test_fuse_is_symmetric_in_score_and_deterministic_on_ties():
    assert ranking.fuse(["x"], ["y"]) == [("x", 1 / 61), ("y", 1 / 61)]
    assert ranking.fuse([], ["y", "z"], limit=1) == [("y", 1 / 61)]
    assert ranking.fuse([], []) == []


def test_rrf_ignores_duplicates_within_a_list():
    assert ranking.rrf([[1, 1, 2]], k=0) == [(1, 1.0), (2, 1 / 3)]


@given(
    a=st.lists(st.integers(0, 30), unique=True, max_size=20),
    b=st.lists(st.integers(0, 30), unique=True, max_size=20),
)
def test_fused_scores_are_sorted_and_bounded(a, b):
    fused = ranking.fuse(a, b)
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True)
    assert {i for i, _ in fused} == set(a) | set(b)
    assert all(0 < s <= 2 / 61 for s in scores)


def test_boost_exact_puts_the_phrase_then_all_words_first_and_leaves_one_word_queries_alone():
    from agentic_pipeline.ingest import ranking

    fused = [("agree", 0.033), ("words", 0.030), ("phrase", 0.016), ("none", 0.015)]
    texts = {"agree": "the river runs", "words": "gear will such soon speeding as",
             "phrase": "built with such  soon-speeding Gear As will", "none": "nothing here"}
    order = [i for i, _ in ranking.boost_exact(fused, texts, "such soon-speeding gear as will")]
    assert order == ["phrase", "words", "agree", "none"]
    assert ranking.boost_exact(fused, texts, "river") == fused
