"""batch-queue of a real folder: nested folders, duplicates, unsupported and unreadable files."""

from __future__ import annotations

import os
import shutil

import pytest

from agentic_pipeline import errors, intake
from agentic_pipeline.ingest.hashing import sha256_file
from tests.batch import rows
from tests.conftest import SAMPLES

ACTOR = "human:alice"
BOOKS = SAMPLES / "books"


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "inbox"
    (root / "nested" / "deeper").mkdir(parents=True)
    shutil.copy(BOOKS / "fsm-drivers.pdf", root)
    shutil.copy(BOOKS / "waste-land.epub", root)
    shutil.copy(BOOKS / "waste-land.md", root / "nested")
    shutil.copy(BOOKS / "zoo-jss.pdf", root / "nested" / "deeper")
    shutil.copy(BOOKS / "fsm-drivers.pdf", root / "nested" / "copy-of-fsm.pdf")  # same content, other name
    os.symlink(root / "waste-land.epub", root / "link-to-waste-land.epub")  # the same file twice
    shutil.copy(SAMPLES / "LICENSES.tsv", root / "nested" / "licences.tsv")  # unsupported suffix
    os.symlink(root / "gone.pdf", root / "broken.pdf")  # broken symlink: unreadable
    return root


def test_recursive_queue_reports_every_kind_and_audits_once(app, folder):
    seen = []
    out = intake.batch_queue(app, folder, recursive=True, priority=3, actor=ACTOR,
                            progress=lambda done, total, path: seen.append((done, total)))
    queued = {os.path.basename(q["path"]) for q in out["queued"]}
    assert queued == {"fsm-drivers.pdf", "waste-land.epub", "waste-land.md", "zoo-jss.pdf"}
    assert [os.path.basename(d["path"]) for d in out["duplicates"]] == ["copy-of-fsm.pdf"]
    assert [os.path.basename(u["path"]) for u in out["unsupported"]] == ["licences.tsv"]
    assert [os.path.basename(u["path"]) for u in out["unreadable"]] == ["broken.pdf"]
    assert seen[-1][0] == seen[-1][1] == len(seen)
    for q in out["queued"]:
        p = app.pipelines.get(q["id"])
        assert p.priority == 3 and p.row["content_hash"] == sha256_file(q["path"])
    (audit,) = rows.audit_rows(app, "BATCH_QUEUED")
    assert audit["actor"] == ACTOR
    assert {k: audit["after_state"][k] for k in ("count", "path", "pattern", "priority")} == {
        "count": 4, "path": str(folder), "pattern": "*", "priority": 3}


def test_second_run_finds_only_duplicates_of_queued_content(app, folder):
    intake.batch_queue(app, folder, recursive=True, actor=ACTOR)
    again = intake.batch_queue(app, folder, recursive=True, actor=ACTOR)
    assert again["queued"] == [] and again["duplicates_count"] == 5
    assert all("already queued" in d["reason"] or "this run" in d["reason"] for d in again["duplicates"])
    assert len(rows.audit_rows(app, "BATCH_QUEUED")) == 1  # nothing queued, nothing to audit


def test_pattern_non_recursive_and_dry_run(app, folder):
    top = intake.batch_queue(app, folder, pattern="*.pdf", actor=ACTOR, execute=False)
    assert [os.path.basename(q["path"]) for q in top["queued"]] == ["fsm-drivers.pdf"]
    assert "id" not in top["queued"][0] and rows.audit_rows(app) == []
    assert app.pipelines.count_by_state() == {}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_permission_denied_is_reported_and_the_run_goes_on(app, folder):
    locked = folder / "nested" / "locked.pdf"
    shutil.copy(BOOKS / "r-intro.pdf", locked)
    locked.chmod(0)
    try:
        out = intake.batch_queue(app, folder, recursive=True, actor=ACTOR)
    finally:
        locked.chmod(0o644)
    assert any(u["path"] == str(locked) and "ermission" in u["reason"] for u in out["unreadable"])
    assert out["queued_count"] == 4


def test_missing_folder_and_bad_priority_are_refused(app, tmp_path):
    with pytest.raises(errors.InputError, match="does not exist"):
        intake.batch_queue(app, tmp_path / "nope", actor=ACTOR)
    with pytest.raises(errors.InputError, match="priority must be between 1 and 10"):
        intake.batch_queue(app, tmp_path, priority=0, actor=ACTOR)


def test_roots_refuse_files_resolving_outside_and_never_read_them(app, folder, tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(BOOKS / "r-intro.pdf", outside / "secret.pdf")
    os.symlink(outside / "secret.pdf", folder / "escape.pdf")                 # a link leading out
    os.symlink(folder / ".." / "outside" / "secret.pdf", folder / "dots.pdf")  # out through ..
    read = []
    monkeypatch.setattr(intake, "sha256_file", lambda p: read.append(os.path.realpath(p)) or sha256_file(p))
    out = intake.batch_queue(app, folder, recursive=True, actor=ACTOR, roots=[folder])
    refused = {os.path.basename(r["path"]): r["reason"] for r in out["refused"]}
    assert set(refused) == {"escape.pdf", "dots.pdf"} and out["refused_count"] == 2
    assert all("outside the allowed roots" in reason for reason in refused.values())
    assert str((outside / "secret.pdf").resolve()) not in read
    assert out["queued_count"] == 4  # the rest of the folder is queued as without roots
    everything = intake.batch_queue(app, folder, recursive=True, actor=ACTOR, roots=[tmp_path], execute=False)
    assert everything["refused"] == [] and [os.path.basename(q["path"]) for q in everything["queued"]] == ["dots.pdf"]


def test_a_thousand_files_are_queued_in_bulk_with_progress_per_file(app, tmp_path):
    inbox = tmp_path / "many"
    inbox.mkdir()
    for i in range(1000):
        (inbox / f"note-{i:04d}.txt").write_text(f"Note {i}\n" + "lorem ipsum " * 20)
    (inbox / "again.txt").write_text("Note 7\n" + "lorem ipsum " * 20)  # same content as note-0007
    seen = []
    out = intake.batch_queue(app, inbox, actor=ACTOR, progress=lambda done, total, path: seen.append(done))
    assert out["queued_count"] == 1000 and out["duplicates_count"] == 1 and seen == list(range(1, 1002))
    ids = [q["id"] for q in out["queued"]]
    assert len(set(ids)) == 1000
    some = app.pipelines.get(ids[500])
    assert some.source_path == out["queued"][500]["path"] and some.state.value == "detected"
    assert [h["to_state"] for h in app.pipelines.history(ids[500])] == ["detected"]
    assert rows.audit_rows(app, "BATCH_QUEUED")[0]["after_state"]["pipeline_ids"] == ids


def test_a_name_that_is_not_utf8_is_reported_and_the_rest_is_queued(app, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(SAMPLES / "books" / "waste-land.md", folder / "poem.md")
    with open(os.fsencode(folder) + b"/caf\xe9.md", "wb") as f:  # a Latin-1 name, as an old archive leaves it
        f.write(b"# Cafe\n\nSome words in a file with a name in another encoding.\n")
    out = intake.batch_queue(app, folder, execute=True, actor="human:t")
    assert out["queued_count"] == 1 and out["unreadable_count"] == 1
    assert "not valid UTF-8" in out["unreadable"][0]["reason"] and out["unreadable"][0]["path"].endswith(".md")
    with pytest.raises(errors.InputError, match="not valid UTF-8"):
        intake.queue_file(app, os.fsdecode(os.fsencode(folder) + b"/caf\xe9.md"), actor="human:t")


def test_a_folder_named_like_a_book_is_not_walked(app, tmp_path):
    folder = tmp_path / "books"
    unpacked = folder / "The Waste Land.epub" / "EPUB"
    unpacked.mkdir(parents=True)
    (unpacked / "wasteland-content.xhtml").write_text("<html><body><p>April is the cruellest month</p></body></html>")
    shutil.copy(SAMPLES / "books" / "waste-land.md", folder / "poem.md")
    out = intake.batch_queue(app, folder, recursive=True, execute=True, actor="human:t")
    assert out["queued_count"] == 1 and out["queued"][0]["path"].endswith("poem.md")
