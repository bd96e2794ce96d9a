"""Alerts that reach people: a notification when an alert starts and when it clears, never on every check.

The health report says which alerts hold now. ``record`` (run by the maintenance leader after
each health refresh) compares them with the open *episodes* in ``alert_episodes``: an alert code
with no open episode opens one and queues a ``started`` notification per channel in the
``alert_outbox``; an open episode whose code no longer holds is closed and queues ``cleared``.
Both happen in the transaction that changes the episode, and only the writer whose statement
changed it queues anything (see db/alerts_store.py), so several workers on several hosts send one
notification per episode and event.

Alerts are grouped by code: 40 stuck books are one ``stuck_pipeline`` episode (its message and
``ids`` list them), which starts with the first and clears when none is stuck, rather than 40
e-mails. Only alerts at least as severe as ``alert_notify_severity`` (default warning) are sent.

``deliver_due`` sends what is due: a JSON POST to each webhook, or one e-mail over SMTP, each
with ``alert_timeout_seconds``; a failure is retried with exponential backoff
(``alert_retry_base_seconds`` doubling, at most an hour) up to ``alert_max_attempts``, then given
up and kept with its last error. A webhook answering 4xx (other than 408 and 429) is not retried.
Workers never wait for a send: ``start_drain`` runs ``deliver_due`` in a background thread.
Each payload carries an ``id`` unique per episode and event, for receivers that deduplicate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import socket
import threading
import urllib.error
import urllib.request
from typing import Any, Iterable, Mapping, Sequence

from agentic_pipeline import __version__
from agentic_pipeline.config import split_list
import sqlalchemy as sa
from agentic_pipeline.db import alerts_store as store
import smtplib
from email.message import EmailMessage

log = logging.getLogger(__name__)

SEVERITIES = ("info", "warning", "critical")
EMAIL = "email"
WEBHOOK = "webhook "
#: the longest pause between two attempts of one notification
MAX_BACKOFF_SECONDS = 3600.0
#: webhook answers that are worth retrying among the 4xx (the rest are the receiver refusing the request)
RETRYABLE_4XX = {408, 425, 429}


class DeliveryFailed(Exception):
    """One attempt to send one notification failed; ``permanent`` when retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


# ------------------------------------------------------------------ pure decisions
@dataclasses.dataclass(frozen=True)
class Grouped:
    """All the alerts of one code in one report, as one notifiable alert."""

    code: str
    severity: str
    message: str
    ids: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Plan:
    start: list[Grouped]
    keep: list[tuple[Mapping[str, Any], Grouped]]
    clear: list[Mapping[str, Any]]


def group(alerts: Iterable[Mapping[str, Any]], min_severity: str) -> dict[str, Grouped]:
    """The report's alerts at least ``min_severity``, one per code (the most severe; every id; messages joined)."""
    floor = SEVERITIES.index(min_severity)
    by_code: dict[str, list[Mapping[str, Any]]] = {}
    for a in alerts:
        if SEVERITIES.index(a["severity"]) >= floor:
            by_code.setdefault(a["code"], []).append(a)
    out = {}
    for code, items in by_code.items():
        severity = max((a["severity"] for a in items), key=SEVERITIES.index)
        ids = tuple(sorted({i for a in items for i in a.get("ids") or ()}))
        message = items[0]["message"] if len(items) == 1 else (
            f"{len(items)} alerts: " + "; ".join(a["message"] for a in items[:10])
            + (f"; … and {len(items) - 10} more" if len(items) > 10 else ""))
        out[code] = Grouped(code, severity, message, ids)
    return out


def plan(open_by_code: Mapping[str, Mapping[str, Any]], current: Mapping[str, Grouped]) -> Plan:
    """Which episodes start (a code holds with none open), continue, and clear (open, no longer holds)."""
    return Plan(start=[g for code, g in sorted(current.items()) if code not in open_by_code],
                keep=[(e, current[code]) for code, e in sorted(open_by_code.items()) if code in current],
                clear=[e for code, e in sorted(open_by_code.items()) if code not in current])


def backoff(attempts: int, base: float, cap: float = MAX_BACKOFF_SECONDS) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: base, 2 base, 4 base, … at most ``cap``."""
    return min(cap, base * 2 ** max(0, attempts - 1))


def channels(settings) -> list[str]:
    """Where notifications go: ``webhook <url>`` per configured URL, and ``email`` when SMTP is configured."""
    out = [WEBHOOK + url for url in split_list(settings.alert_webhooks)]
    if settings.alert_smtp_host and split_list(settings.alert_email_to):
        out.append(EMAIL)
    return out


def payload(event: str, episode: Mapping[str, Any], label: str) -> dict[str, Any]:
    """The JSON a webhook receives (and an e-mail is written from)."""
    cleared = episode.get("cleared_at")
    verb = "started" if event == "started" else "cleared"
    text = (f"[agentic-pipeline {label}] {episode['severity'].upper()} {episode['code']} {verb}: "
            f"{episode['message']}")
    return {
        "id": f"{label}/episode-{episode['id']}/{event}",
        "event": event,
        "installation": label,
        "alert": {"code": episode["code"], "severity": episode["severity"], "message": episode["message"],
                  "ids": list(episode.get("ids") or [])},
        "episode": {"id": episode["id"], "started_at": _iso(episode["started_at"]), "cleared_at": _iso(cleared)},
        "text": text,
        "sender": f"agentic-pipeline {__version__}",
    }


def label_of(settings, db_url: str) -> str:
    """The installation's name in notifications: the setting, else the database host, else this host."""
    if settings.alert_label:
        return settings.alert_label
    if db_url.startswith("postgresql"):
        url = sa.engine.make_url(db_url)
        return f"{url.host or 'localhost'}/{url.database or ''}"
    return socket.gethostname()


# ------------------------------------------------------------------ recording episodes
def record(app, alerts: Sequence[Mapping[str, Any]], now: dt.datetime) -> dict[str, list[str]]:
    """Open, continue and close episodes for the alerts that hold now, queueing their notifications.

    One write transaction. An episode's "started" notification is queued once it has held for
    ``alert_notify_after_seconds`` (a worker restart's brief ``no_workers`` sends nothing); its
    "cleared" one only if "started" went out.
    """
    s = app.settings
    current = group(alerts, s.alert_notify_severity)
    targets = channels(s)
    label = label_of(s, app.db.url)
    hold = dt.timedelta(seconds=s.alert_notify_after_seconds)
    started, cleared = [], []
    with app.db.write() as conn:
        decided = plan(store.open_episodes(conn), current)
        holding = []
        for g in decided.start:
            episode_id = store.open_episode(conn, code=g.code, severity=g.severity, message=g.message,
                                            ids=list(g.ids), now=now)
            if episode_id is not None:  # None: another evaluator opened it first and carries it on
                holding.append(({"id": episode_id, "started_at": now, "notified_at": None}, g))
        for episode, g in decided.keep:
            store.touch_episode(conn, episode["id"], severity=g.severity, message=g.message, ids=list(g.ids), now=now)
        for episode, g in holding + list(decided.keep):
            if episode["notified_at"] is not None or now - episode["started_at"] < hold:
                continue
            if not store.mark_notified(conn, episode["id"], now=now):
                continue
            row = {**episode, "code": g.code, "severity": g.severity, "message": g.message, "ids": list(g.ids),
                   "cleared_at": None}
            store.enqueue(conn, episode_id=episode["id"], event="started", channels=targets,
                          payload=payload("started", row, label), now=now)
            started.append(g.code)
        for episode in decided.clear:
            closed = store.close_episode(conn, episode["id"], now=now)
            if closed is None or closed["notified_at"] is None:  # closed by someone else, or never announced
                continue
            store.enqueue(conn, episode_id=closed["id"], event="cleared", channels=targets,
                          payload=payload("cleared", closed, label), now=now)
            cleared.append(closed["code"])
    return {"started": started, "cleared": cleared}


# ------------------------------------------------------------------ delivering
def deliver_due(app, *, limit: int = 50) -> dict[str, int]:
    """Send every due notification once (each taken by compare-and-set); counts of sent, retrying, given up."""
    s = app.settings
    counts = {"sent": 0, "retrying": 0, "gave_up": 0}
    with app.db.read() as conn:
        rows = store.due(conn, app.clock.now(), limit=limit)
    for row in rows:
        now = app.clock.now()
        with app.db.write() as conn:  # a send may take the whole timeout: nobody else takes the row meanwhile
            if not store.take(conn, row, until=now + dt.timedelta(seconds=2 * s.alert_timeout_seconds + 30)):
                continue
        try:
            send(s, row["channel"], row["payload"])
        except DeliveryFailed as exc:
            attempts = row["attempts"] + 1
            give_up = exc.permanent or attempts >= s.alert_max_attempts
            retry_at = None if give_up else app.clock.now() + dt.timedelta(
                seconds=backoff(attempts, s.alert_retry_base_seconds))
            with app.db.write() as conn:
                store.failed(conn, row["id"], error=str(exc), next_attempt_at=retry_at, now=app.clock.now())
            counts["gave_up" if give_up else "retrying"] += 1
            (log.error if give_up else log.warning)(
                "alert notification %s to %s failed (attempt %d): %s%s", row["payload"].get("id"), row["channel"],
                attempts, exc, "; giving up" if give_up else "")
            continue
        with app.db.write() as conn:
            store.delivered(conn, row["id"], now=app.clock.now())
        counts["sent"] += 1
    return counts


def send(settings, channel: str, body: Mapping[str, Any]) -> None:
    """One attempt to deliver ``body`` on ``channel``; raises ``DeliveryFailed``."""
    if channel.startswith(WEBHOOK):
        post_webhook(channel[len(WEBHOOK):], body, timeout=settings.alert_timeout_seconds)
    elif channel == EMAIL:
        send_email(settings, body)
    else:
        raise DeliveryFailed(f"unknown channel {channel!r}", permanent=True)


def post_webhook(url: str, body: Mapping[str, Any], *, timeout: float) -> None:
    data = json.dumps(body, ensure_ascii=False, default=str).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": f"agentic-pipeline/{__version__}",
        "Idempotency-Key": str(body.get("id", ""))})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - the operator's URL
            answer.read(65536)
    except urllib.error.HTTPError as exc:
        permanent = 400 <= exc.code < 500 and exc.code not in RETRYABLE_4XX
        raise DeliveryFailed(f"HTTP {exc.code} {exc.reason}", permanent=permanent) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"cannot reach the webhook: {reason}") from None


def send_email(settings, body: Mapping[str, Any]) -> None:
    message = EmailMessage()
    alert = body["alert"]
    verb = "started" if body["event"] == "started" else "cleared"
    message["Subject"] = f"[agentic-pipeline {body['installation']}] {alert['severity'].upper()} {alert['code']} {verb}"
    message["From"] = settings.alert_email_from
    message["To"] = ", ".join(split_list(settings.alert_email_to))
    message["Message-ID"] = f"<{re.sub(r'[^A-Za-z0-9.-]+', '.', body['id'])}@agentic-pipeline>"
    ep = body["episode"]
    message.set_content(f"{alert['message']}\n\nAlert: {alert['code']} ({alert['severity']}), {verb}.\n"
                        f"Episode {ep['id']}: started {ep['started_at']}"
                        + (f", cleared {ep['cleared_at']}" if ep["cleared_at"] else "") + ".\n"
                        + (f"Pipelines: {', '.join(str(i) for i in alert['ids'])}\n" if alert["ids"] else "")
                        + "\nSee `agentic-pipeline health` for the whole report.\n")
    try:
        with smtplib.SMTP(settings.alert_smtp_host, settings.alert_smtp_port,
                          timeout=settings.alert_timeout_seconds) as smtp:
            if settings.alert_smtp_starttls:
                smtp.starttls()
            if settings.alert_smtp_user:
                smtp.login(settings.alert_smtp_user, settings.alert_smtp_password)
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryFailed(f"the SMTP server refused every recipient: {exc.recipients}", permanent=True) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"SMTP {settings.alert_smtp_host}:{settings.alert_smtp_port}: {exc}") from None


# ------------------------------------------------------------------ the background drain
_drains: dict[int, threading.Thread] = {}
_drains_lock = threading.Lock()


def start_drain(app) -> bool:
    """Deliver what is due in a background thread of this process; False when one is still running."""
    with _drains_lock:
        running = _drains.get(id(app))
        if running is not None and running.is_alive():
            return False
        thread = threading.Thread(target=_drain, args=(app,), name="alert-delivery", daemon=True)
        _drains[id(app)] = thread
        thread.start()
        return True


def wait_drained(app, timeout: float) -> bool:
    """Wait for this process's drain thread to finish (tests, and a worker on its way out)."""
    thread = _drains.get(id(app))
    if thread is None:
        return True
    thread.join(timeout)
    return not thread.is_alive()


def _drain(app) -> None:
    try:
        while sum(deliver_due(app).values()):
            pass
    except Exception as exc:  # noqa: BLE001 - the database blinked: the next maintenance tick starts another
        log.warning("alert delivery stopped: %s", exc)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value
