"""Log lines for long-running commands (worker, serve, mcp, process --wait): text or JSON lines on stderr.

Everything goes through the standard ``logging`` module under the ``agentic_pipeline`` logger;
``setup`` installs one stderr handler with one of two formats:

- ``text``: ``2026-12-03T09:14:02Z INFO  book_done pipeline=12 state=complete took=4.1s title="The Waste Land"``
  (a human-readable message, then the event's fields as key=value);
- ``json``: one JSON object per line with ``timestamp``, ``level``, ``event``, ``message`` and the
  event's fields (``pipeline_id``, ``title``, ``state``, ``seconds``, ``reason`` ...), for journald or Loki.

An event is logged with ``event(logger, "book_done", "message", pipeline_id=12, ...)``. Every text
field goes through ``escaping.printable``: a title or file name holding a newline cannot forge a
second log line (JSON escapes control characters by itself).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

from agentic_pipeline.escaping import printable
from agentic_pipeline import errors
from agentic_pipeline import __version__, config

ROOT = "agentic_pipeline"
LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
_FIELDS = "ap_fields"
_EVENT = "ap_event"
_HANDLER_MARK = "_agentic_pipeline_handler"


def event(logger: logging.Logger, name: str, message: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``message`` as event ``name`` with structured ``fields`` (None values are left out)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={_EVENT: name, _FIELDS: {k: v for k, v in fields.items() if v is not None}})


def _timestamp(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _event_name(record: logging.LogRecord) -> str:
    return getattr(record, _EVENT, None) or record.levelname.lower()


class TextFormatter(logging.Formatter):
    """``timestamp LEVEL event message key=value ...`` on one line, control characters escaped."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, _FIELDS, {}) or {}
        parts = [_timestamp(record), f"{record.levelname:<7}", printable(_event_name(record)),
                 printable(record.getMessage())]
        for key, value in fields.items():
            parts.append(f"{key}={_text_value(value)}")
        if record.exc_info:
            parts.append("error=" + _text_value(self.formatException(record.exc_info)))
        return " ".join(parts)


def _text_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, (dict, list, tuple)):
        return printable(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))
    text = printable(value)
    return json.dumps(text, ensure_ascii=False) if (not text or any(c in text for c in ' "=')) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, event, message, logger and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"timestamp": _timestamp(record), "level": record.levelname.lower(),
                               "event": _event_name(record), "message": record.getMessage(), "logger": record.name}
        doc.update(getattr(record, _FIELDS, {}) or {})
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def setup(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """Send the program's log records at ``level`` and above to ``stream`` (stderr) in format ``fmt``.

    Idempotent: calling it again replaces the handler it installed before (a forked worker keeps
    its parent's). Records still propagate to the root logger, which has no handler unless an
    embedding application (or a test runner) installs one.
    """
    level, fmt = (level or "info").lower(), (fmt or "text").lower()
    if level not in LEVELS:
        raise errors.InputError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise errors.InputError(f"unknown log format {fmt!r}; use text or json")
    root = logging.getLogger(ROOT)
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    return handler


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (a test runner may swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def start_line(logger: logging.Logger, command: str, settings, **fields: Any) -> None:
    """The first line of a long-running command: version, database without its password, and ``fields``."""
    database = config.mask_password(settings.db_url)
    extra = ", ".join(f"{k} {printable(v)}" for k, v in fields.items() if v is not None)
    event(logger, f"{command}_start", f"agentic-pipeline {__version__} {command} starting on {database}"
          + (f" ({extra})" if extra else ""), version=__version__, database=database, **fields)


def seconds(value: float | None) -> str:
    """A duration for a message: ``0.4s``, ``12.0s``, ``3.5m``."""
    if value is None:
        return "-"
    return f"{value:.1f}s" if value < 120 else f"{value / 60:.1f}m"
