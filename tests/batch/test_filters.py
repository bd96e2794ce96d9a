"""The batch filter: validation messages, stable ids, and SQL == the Python reference predicate."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentic_pipeline import errors
from agentic_pipeline.batch import filters
from agentic_pipeline.batch.filters import BatchFilter, make_filter
from agentic_pipeline.db import batch_store
from agentic_pipeline.db.schema import processing_pipelines as pp
from agentic_pipeline.pipeline.states import State
from tests.batch import rows

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)


def test_book_types_are_the_classifiers():
    from agentic_pipeline.ingest import classify

    assert filters.BOOK_TYPES == classify.BOOK_TYPES


@pytest.mark.parametrize("raw, message", [
    ({"book_type": "novel"}, "valid types: technical_tutorial, technical_reference, textbook, literature"),
    ({"state": "waiting"}, "valid states: detected, hashing"),
    ({"min_confidence": 1.5}, "min_confidence must be a number between 0 and 1"),
    ({"max_confidence": "high"}, "max_confidence must be a number between 0 and 1"),
    ({"min_confidence": 0.9, "max_confidence": 0.1}, "above max_confidence"),
    ({"created_after": "2030-01-01", "created_before": "2020-01-01"}, "nothing could match"),
    ({"created_before": "last tuesday"}, "ISO date"),
    ({"source_path_pattern": ""}, "non-empty glob"),
    ({"max_count": 0}, "at least 1"),
])
def test_unknown_or_out_of_range_values_are_refused_with_the_valid_ones(raw, message):
    with pytest.raises(errors.InputError, match=message):
        make_filter(**raw)


def test_naive_datetimes_are_refused_but_iso_dates_mean_utc():
    with pytest.raises(errors.InputError, match="aware"):
        BatchFilter(created_after=dt.datetime(2026, 1, 1))
    assert make_filter(created_after="2026-01-02").created_after == dt.datetime(2026, 1, 2, tzinfo=UTC)
    assert make_filter(book_type="Periodical").book_type == "periodical"
    assert make_filter(state="PENDING_APPROVAL").state is State.PENDING_APPROVAL


def test_filter_id_is_stable_and_ignores_max_count():
    a = make_filter(book_type="textbook", min_confidence=0.5, max_count=10)
    b = make_filter(min_confidence="0.5", book_type="textbook", max_count=99)
    assert a.filter_id == b.filter_id and len(a.filter_id) == 12
    assert a.filter_id != make_filter(book_type="textbook", min_confidence=0.6).filter_id


def test_empty_filter_matches_nothing_unless_all():
    row = rows.row(T0, 1)
    assert not BatchFilter().matches(row)
    assert BatchFilter(all=True).matches(row)


def test_glob_semantics_on_both_engines(app):
    paths = ["/Books/a.pdf", "/books/a.pdf", "/books/a.PDF", "/books/100%_done.pdf", "/books/100x-done.pdf",
             "/books/[draft] b.pdf", "/books/d b.pdf", "/books/sub/c.pdf", "/books/back\\slash.pdf", "/books/é.pdf"]
    ids = rows.insert(app, [rows.row(T0, i, source_path=p) for i, p in enumerate(paths)])
    by_path = dict(zip(paths, ids))
    cases = {
        "/books/*.pdf": [p for p in paths if p.startswith("/books/") and p.endswith(".pdf")],
        "*100%_done*": ["/books/100%_done.pdf"],
        "/books/[draft]*": ["/books/[draft] b.pdf"],
        "/books/?.pdf": ["/books/a.pdf", "/books/é.pdf"],
        "*\\slash*": ["/books/back\\slash.pdf"],
        "/books/a.pdf": ["/books/a.pdf"],
    }
    with app.db.read() as conn:
        for pattern, expected in cases.items():
            f = BatchFilter(source_path_pattern=pattern)
            got = [r["id"] for r in batch_store.list_matching(conn, f, None)]
            assert got == sorted(by_path[p] for p in expected), pattern
            assert [p for p in paths if f.matches({"source_path": p})] == [p for p in paths if p in expected]


# ---------------------------------------------------------------- property: SQL == Python
PATH_CHARS = "ab/._%*?[]\\Aé -"
row_st = st.fixed_dictionaries({
    "source_path": st.text(PATH_CHARS, min_size=1, max_size=10),
    "book_type": st.one_of(st.none(), st.sampled_from(filters.BOOK_TYPES[:3])),
    "confidence": st.one_of(st.none(), st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.floats(0, 1)),
    "state": st.sampled_from(["detected", "pending_approval", "failed", "needs_retry"]),
    "created_min": st.integers(0, 50),
})
filter_st = st.fixed_dictionaries({
    "book_type": st.one_of(st.none(), st.sampled_from(filters.BOOK_TYPES[:3])),
    "min_confidence": st.one_of(st.none(), st.sampled_from([0.0, 0.25, 0.5]), st.floats(0, 1)),
    "max_confidence": st.one_of(st.none(), st.sampled_from([0.5, 0.75, 1.0]), st.floats(0, 1)),
    "state": st.one_of(st.none(), st.sampled_from(["detected", "pending_approval", "failed"])),
    "created_before": st.one_of(st.none(), st.integers(0, 50)),
    "created_after": st.one_of(st.none(), st.integers(0, 50)),
    "source_path_pattern": st.one_of(st.none(), st.text(PATH_CHARS, min_size=1, max_size=6)),
    "all": st.booleans(),
})


def _filter(raw) -> BatchFilter | None:
    raw = dict(raw)
    for key in ("created_before", "created_after"):
        if raw[key] is not None:
            raw[key] = T0 + dt.timedelta(minutes=raw[key])
    lo, hi = raw["min_confidence"], raw["max_confidence"]
    if lo is not None and hi is not None and lo > hi:
        return None
    after, before = raw["created_after"], raw["created_before"]
    if after is not None and before is not None and after >= before:
        return None  # an empty time range is refused, as min > max confidence is
    return make_filter(**raw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.lists(row_st, max_size=25), raw_filters=st.lists(filter_st, min_size=1, max_size=4))
def test_sql_match_set_equals_the_python_predicate(app, data, raw_filters):
    with app.db.write() as conn:
        conn.execute(pp.delete())
    inserted = [rows.row(T0 + dt.timedelta(minutes=d.pop("created_min")), i, **d) for i, d in enumerate(data)]
    ids = rows.insert(app, inserted) if inserted else []
    for raw in raw_filters:
        f = _filter(raw)
        if f is None:
            continue
        expected = [i for i, r in zip(ids, inserted) if f.matches(r)]
        with app.db.read() as conn:
            got = [r["id"] for r in batch_store.list_matching(conn, f, None)]
            count = batch_store.count_matching(conn, f)
        assert got == expected, f
        assert count == len(expected)


# --- i13: relative input, one set of names -----------------------------------------------------------
def test_ages_are_counted_back_from_now():
    import datetime as dt

    from agentic_pipeline.batch.filters import make_filter

    now = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
    f = make_filter(created_after="2d", created_before="90m", now=now)
    assert f.created_after == now - dt.timedelta(days=2)
    assert f.created_before == now - dt.timedelta(minutes=90)
    assert make_filter(created_after="1w", now=now).created_after == now - dt.timedelta(weeks=1)
    with pytest.raises(errors.InputError, match="or an age such as 2d"):
        make_filter(created_after="2 days", now=now)


@pytest.mark.parametrize("pattern, expected", [
    ("books/*.pdf", "/home/me/books/*.pdf"),
    ("./books/*.pdf", "/home/me/books/*.pdf"),
    ("/abs/*.pdf", "/abs/*.pdf"),
    ("*/Books/*", "*/Books/*"),
    ("?ooks/*", "?ooks/*"),
])
def test_relative_source_patterns_are_taken_from_the_base(pattern, expected):
    from agentic_pipeline.batch.filters import make_filter

    assert make_filter(source_path_pattern=pattern, base="/home/me").source_path_pattern == expected
    assert make_filter(source_path_pattern=pattern).source_path_pattern == pattern  # no base: as given


def test_the_cli_resolves_a_relative_pattern_and_keeps_the_old_spelling(tmp_path, monkeypatch, sqlite_url, capsys):
    """A relative --source-path-pattern from the current directory matches (it silently matched nothing)."""
    import json
    import shutil

    from agentic_pipeline.interfaces.cli import cli
    from agentic_pipeline.interfaces.cli.context import run
    from tests.conftest import SAMPLES

    (tmp_path / "books").mkdir()
    shutil.copy(SAMPLES / "books" / "waste-land.md", tmp_path / "books" / "waste-land.md")
    shutil.copy(SAMPLES / "books" / "waste-land.html", tmp_path / "books" / "waste-land.html")
    monkeypatch.chdir(tmp_path)
    assert run(cli, ["--db", sqlite_url, "batch-queue", "books", "--execute", "--json"]) == 0
    capsys.readouterr()
    for option in ("--source-path-pattern", "--source-pattern"):
        assert run(cli, ["--db", sqlite_url, "batch-priority", "2", "--state", "detected", option, "books/*.md",
                         "--created-after", "1h", "--json"]) == 0
        plan = json.loads(capsys.readouterr().out)["plan"]
        assert plan["matched"] == 1 and plan["filter"]["source_path_pattern"] == f"{tmp_path}/books/*.md"
    assert run(cli, ["--db", sqlite_url, "pending", "--type", "literature", "--json"]) == 0  # old spelling
    assert run(cli, ["--db", sqlite_url, "batch-priority", "2", "--source-path-pattern", "a", "--source-pattern",
                     "b"]) != 0
    assert "old spelling of --source-path-pattern" in capsys.readouterr().err
