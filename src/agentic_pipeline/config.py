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
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclasses.dataclass
class Settings:
    # storage
    db: str = ""  # "" means <data_dir>/pipeline.db
    data_dir: Path = dataclasses.field(default_factory=_default_data_dir)
    # workers and leases
    lease_seconds: int = 120
    heartbeat_seconds: int = 15
    stage_timeouts: dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_STAGE_SECONDS))
    stage_memory_mb: int = 4096
    max_attempts: int = 3
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    watch_dir: Path | None = None
    processed_dir: Path | None = None
    # health and stuck detection
    health_interval: int = 30
    health_stale_seconds: int = 90
    expected_seconds: dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_STAGE_SECONDS))
    stuck_multiplier: float = 2.0
    stuck_min_samples: int = 100
    #: no working book is stuck before this many seconds in its state, whatever the median says
    stuck_floor_seconds: float = 30.0
    recovery_minutes: dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_RECOVERY_MINUTES))
    max_auto_recoveries: int = 2
    alert_failure_rate: float = 0.20
    alert_queue_backup: int = 100
    alert_idle_minutes: int = 60
    alert_disk_free_mb: int = 1024
    # priority aging
    aging_first_hours: float = 24.0
    aging_boost: int = 2
    aging_second_hours: float = 48.0
    # audit retention
    retention_days: dict[str, int] = dataclasses.field(default_factory=lambda: dict(DEFAULT_RETENTION_DAYS))
    # ingestion
    embedder: str = "wordllama"
    max_book_mb: int = 512
    # batch operations
    batch_max_count: int = 50
    # interfaces
    http_host: str = "127.0.0.1"
    http_port: int = 8765
    mcp_roots: tuple[Path, ...] = ()

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
    return settings


def _config_path(environ: dict[str, str]) -> Path | None:
    explicit = environ.get(ENV_PREFIX + "CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise errors.ConfigError(f"config file {path} does not exist")
        return path
    import platformdirs

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
