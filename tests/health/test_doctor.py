"""``doctor`` on a sound installation and on broken ones, each check failing once, through the real CLI.

The sound installation is real: a SQLite (and a PostgreSQL) database with a sample book taken
through every stage by a worker with the shipped embedding model, approved by a person (so the
audit trail has entries), a watch folder, a processed folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from agentic_pipeline import config
from agentic_pipeline.clock import FakeClock
from agentic_pipeline.health import doctor, notify
from tests.audit.conftest import drop_guards
from tests.conftest import make_db_url, open_app
from tests.orchestrator.helpers import SAMPLES, cli_args


def build_sound(url: str, root: Path) -> dict[str, str]:
    """A working installation at ``url``: one complete book (real model), an approval, the folders."""
    from agentic_pipeline.approval import operations as approval
    from agentic_pipeline.orchestrator import queueing, worker

    watch, done = root / "inbox", root / "done"
    watch.mkdir(parents=True, exist_ok=True)
    done.mkdir(exist_ok=True)
    shutil.copy(SAMPLES / "waste-land.md", watch / "waste-land.md")
    settings = {"embedder": "wordllama", "watch_dir": str(watch), "processed_dir": str(done),
                "data_dir": str(root / "data")}
    with open_app(url, **settings) as app:
        pid = queueing.queue_file(app, watch / "waste-land.md", actor="human:test")["id"]
        options = worker.Options(until_empty=True, isolate=False, maintenance=False, poll_seconds=0.05)
        worker.Worker(app, options).run()
        approval.approve(app, pid, actor="human:alice", reason="looks right")
        worker.Worker(app, options).run()
        assert app.pipelines.get(pid).state.value == "complete"
    return {"AGENTIC_PIPELINE_" + k.upper(): v for k, v in settings.items()}


def doctor_cli(url: str, env: dict[str, str], *args: str) -> tuple[int, dict]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGENTIC_PIPELINE_")}
    out = subprocess.run(cli_args(url, "doctor", "--json", *args), env={**clean, **env}, capture_output=True,
                         text=True, timeout=300)
    assert out.stdout, out.stderr
    return out.returncode, json.loads(out.stdout)


def statuses(report) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


@pytest.fixture(scope="module")
def sound_sqlite(tmp_path_factory, sqlite_template) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("sound")
    url = make_db_url("sqlite", root, sqlite_template, None)
    env = build_sound(url, root)
    return root, env


@pytest.fixture
def sqlite_install(sound_sqlite, tmp_path) -> tuple[str, dict[str, str]]:
    """A private copy of the sound SQLite installation (each test breaks one thing)."""
    root, env = sound_sqlite
    shutil.copy(root / "pipeline.db", tmp_path / "pipeline.db")
    return f"sqlite:///{tmp_path / 'pipeline.db'}", dict(env)


def test_pure_verdicts():
    assert doctor.overall(["ok", "unknown", "warning"]) == "warning"
    assert doctor.overall(["ok", "unknown"]) == "unknown" and doctor.overall(["critical", "unknown"]) == "critical"
    assert doctor.disk_verdict(500 * 2 ** 20, 1024) == "critical"
    assert doctor.disk_verdict(1500 * 2 ** 20, 1024) == "warning" and doctor.disk_verdict(3 * 2 ** 30, 1024) == "ok"
    assert doctor.skew_verdict(-6) == "warning" and doctor.skew_verdict(4.9) == "ok"
    assert doctor.workers_verdict(0, 3) == "warning" and doctor.workers_verdict(0, 0) == "ok"


def test_a_sound_sqlite_installation(sqlite_install):
    url, env = sqlite_install
    code, report = doctor_cli(url, env)
    assert statuses(report) == dict.fromkeys(doctor.NAMES, "ok"), report
    assert code == 0 and report["status"] == "ok"
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["embedding"]["details"]["model"].startswith("wordllama")
    assert checks["audit"]["details"]["count"] >= 1
    assert checks["search_index"]["details"]["books_missing_vectors"] == 0
    assert checks["watch_folder"]["details"]["entries"] == 1


@pytest.mark.pg
def test_a_sound_postgresql_installation_and_a_skewed_host(tmp_path, pg_databases):
    url = make_db_url("postgresql", tmp_path, None, pg_databases)
    env = build_sound(url, tmp_path)
    code, report = doctor_cli(url, env)
    assert code == 0 and statuses(report) == dict.fromkeys(doctor.NAMES, "ok"), report
    clock = {c["name"]: c for c in report["checks"]}["clock"]
    assert abs(clock["details"]["skew_seconds"]) < doctor.SKEW_WARNING_SECONDS
    settings = config.load({"db": url, **{k[len("AGENTIC_PIPELINE_"):].lower(): v for k, v in env.items()}},
                           environ={})
    skewed = FakeClock(dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=3))  # this host runs 3 min ahead
    report = doctor.run(settings, clock=skewed, skip=("embedding", "audit", "search_index"))
    assert statuses(report)["clock"] == "warning" and report["exit_code"] == 1
    skew = {c["name"]: c for c in report["checks"]}["clock"]
    assert 170 < skew["details"]["skew_seconds"] < 190 and "ahead of the database server" in skew["summary"]
    assert "chrony" in skew["fix"]


def _break_database_missing(url, env, tmp_path):
    return f"sqlite:///{tmp_path / 'nowhere' / 'pipeline.db'}", env


def _break_database_unreachable(url, env, tmp_path):
    return "postgresql://postgres@127.0.0.1:1/nothing", env


def _break_database_behind(url, env, tmp_path):
    with open_app(url) as app, app.db.write() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0005'"))
    return url, env


def _break_disk(url, env, tmp_path):
    return url, {**env, "AGENTIC_PIPELINE_ALERT_DISK_FREE_MB": str(10 ** 9)}


def _break_embedding(url, env, tmp_path):
    return url, {**env, "AGENTIC_PIPELINE_EMBEDDER": "no-such-model"}


def _break_ocr(url, env, tmp_path):
    """OCR installed but broken: no language data where it looks (or, without any engine here, a tesseract
    program that fails as a broken install does)."""
    empty = tmp_path / "tessdata"
    empty.mkdir()
    extra = {"TESSDATA_PREFIX": str(empty)}
    engine, _langs, _problem = doctor._ocr_languages()
    if engine is None:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "tesseract"
        fake.write_text("#!/bin/sh\necho 'Error opening data file /nowhere/eng.traineddata' >&2\nexit 1\n")
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
        extra["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    return url, {**env, **extra}


def _break_watch_folder(url, env, tmp_path):
    return url, {**env, "AGENTIC_PIPELINE_WATCH_DIR": str(tmp_path / "no-such-inbox")}


def _break_workers(url, env, tmp_path):
    with open_app(url) as app:
        for i in range(2):
            app.pipelines.create(source_path=f"/books/waiting-{i}.epub", actor="human:test")
    return url, env


def _break_audit(url, env, tmp_path):
    with open_app(url) as app:
        drop_guards(app)
        with app.db.write() as conn:
            conn.execute(sa.text("UPDATE approval_audit SET reason = 'rewritten later' WHERE action = 'APPROVED'"))
    return url, env


def _break_search_index(url, env, tmp_path):
    with open_app(url) as app, app.db.write() as conn:
        conn.execute(sa.text("UPDATE chunks SET embedding = NULL WHERE id = (SELECT min(id) FROM chunks)"))
    return url, env


def _break_alert_delivery(url, env, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    with open_app(url, alert_webhooks=dead, alert_notify_after_seconds=0, alert_max_attempts=1) as app:
        notify.record(app, [{"code": "no_workers", "severity": "warning", "message": "m", "ids": []}], app.clock.now())
        assert notify.deliver_due(app)["gave_up"] == 1
    return url, {**env, "AGENTIC_PIPELINE_ALERT_WEBHOOKS": dead}


#: check -> (how to break it, the status it must report, words its fix must contain)
BROKEN = {
    "database (missing)": (_break_database_missing, "database", "critical", "agentic-pipeline init"),
    "database (unreachable)": (_break_database_unreachable, "database", "critical", "start the database"),
    "database (behind)": (_break_database_behind, "database", "critical", "agentic-pipeline init"),
    "disk": (_break_disk, "disk", "critical", "free space"),
    "embedding": (_break_embedding, "embedding", "critical", "embedder"),
    "ocr": (_break_ocr, "ocr", "warning", "tesseract-ocr"),
    "watch_folder": (_break_watch_folder, "watch_folder", "critical", "mkdir"),
    "workers": (_break_workers, "workers", "warning", "start workers"),
    "audit": (_break_audit, "audit", "critical", "backup"),
    "search_index": (_break_search_index, "search_index", "warning", "reembed"),
    "alert_delivery": (_break_alert_delivery, "alert_delivery", "warning", "alert_webhooks"),
}
#: what a broken check takes down with it (they cannot be judged without it)
DEPENDENTS = {"database": {"clock", "workers", "audit", "search_index", "alert_delivery"},
              "embedding": {"search_index"}}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_installation_names_the_check_and_the_fix(case, sqlite_install, tmp_path):
    breaker, name, expected, fix_words = BROKEN[case]
    url, env = breaker(*sqlite_install, tmp_path)
    code, report = doctor_cli(url, env)
    found = statuses(report)
    assert found[name] == expected, report
    check = {c["name"]: c for c in report["checks"]}[name]
    assert fix_words in (check["fix"] or ""), check
    others = {n: s for n, s in found.items() if n != name}
    allowed = DEPENDENTS.get(name, set())
    assert {n for n, s in others.items() if s != "ok"} <= allowed, report
    assert all(s == "unknown" for n, s in others.items() if n in allowed and s != "ok")
    assert code == doctor.EXIT_CODES[expected]


def test_human_output_fits_80_columns_and_says_what_to_fix(sqlite_install, tmp_path):
    url, env = _break_watch_folder(*sqlite_install, tmp_path)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGENTIC_PIPELINE_")}
    out = subprocess.run(cli_args(url, "doctor", "--skip", "embedding"), env={**clean, **env, "COLUMNS": "80"},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("Installation check: CRITICAL")
    assert max(len(line) for line in lines) <= 80, out.stdout
    assert any("fix: create it" in line for line in lines) and "embedding" not in out.stdout


def test_a_bad_setting_is_a_critical_config_check(sqlite_install):
    url, env = sqlite_install
    code, report = doctor_cli(url, {**env, "AGENTIC_PIPELINE_ALERT_WEBHOOKS": "ftp://nope/x"})
    assert code == 2 and statuses(report) == {"config": "critical"}
    assert "alert_webhooks" in report["checks"][0]["summary"]
