"""The hash chain: each entry's hash covers its content and the previous entry's hash (pure).

``entry_hash = sha256(payload)``, or ``HMAC-SHA256(key, payload)`` when the
``AGENTIC_PIPELINE_AUDIT_KEY`` environment variable holds a key. The payload is one canonical
JSON array (sorted keys, compact separators, ASCII): the scalar fields first, the three JSON
documents last, so a stored canonical JSON text can be spliced in verbatim (the fast path of
``verify``). Changing, removing or inserting a row out of band breaks the chain at that row.
Times enter the hash as integer milliseconds since the epoch, so the value survives both
engines' storage exactly; entries are stored at that whole millisecond (``truncate_to_millis``)
and verify takes the time only when the stored value is still exactly it, so an edit smaller
than a millisecond is caught too (``db.audit_scan``, migration 0008).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import os
from typing import Any, Mapping
from json import encoder as _enc

GENESIS = "0" * 64
KEY_ENV = "AGENTIC_PIPELINE_AUDIT_KEY"
_sha256 = hashlib.sha256


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """One decision or system action, as the caller describes it (id and hashes come at append)."""

    action: str
    actor: str
    pipeline_id: int | None = None
    book_id: int | None = None
    reason: str | None = None
    before_state: Any = None
    after_state: Any = None
    filter_used: Any = None
    confidence_at_decision: float | None = None


HASHED_FIELDS = ("id", "book_id", "pipeline_id", "action", "actor", "reason", "confidence_at_decision",
                 "performed_at", "prev_hash", "before_state", "after_state", "filter_used")
JSON_FIELDS = ("before_state", "after_state", "filter_used")


def _make_encoder():
    """A reusable C JSON encoder: building one per call is most of ``json.dumps``'s cost."""
    py = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    if _enc.c_make_encoder is None:  # pragma: no cover - CPython always has it
        return lambda value, _level: [py.encode(value)]
    iterencode = _enc.c_make_encoder(None, py.default, _enc.encode_basestring_ascii, None, ":", ",",
                                     True, False, True)
    return iterencode


_ENCODE = _make_encoder()


def canonical(value: Any) -> str:
    """The canonical JSON text of ``value`` (sorted keys, compact separators, ASCII)."""
    return "".join(_ENCODE(value, 0))


def to_millis(moment: dt.datetime) -> int:
    return int(round(moment.timestamp() * 1000))


def truncate_to_millis(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=(moment.microsecond // 1000) * 1000)


def audit_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The HMAC key from ``AGENTIC_PIPELINE_AUDIT_KEY``, or None (plain SHA-256)."""
    raw = (os.environ if environ is None else environ).get(KEY_ENV, "")
    return raw.encode("utf-8") if raw else None


def payload_head(id_, book_id, pipeline_id, action, actor, reason, confidence, millis, prev_hash) -> str:
    """The scalar part of the payload, without its closing bracket."""
    if confidence is not None:
        confidence = float(confidence)
    return canonical([id_, book_id, pipeline_id, action, actor, reason, confidence, millis, prev_hash])[:-1]


def digest(payload: str, key: bytes | None) -> str:
    data = payload.encode("utf-8")
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.digest(key, data, "sha256").hex()


def payload_of(row: Mapping[str, Any]) -> str:
    """The canonical payload of a stored (or about to be stored) row."""
    head = payload_head(row.get("id"), row.get("book_id"), row.get("pipeline_id"), row.get("action"),
                        row.get("actor"), row.get("reason"), row.get("confidence_at_decision"),
                        to_millis(row["performed_at"]), row.get("prev_hash"))
    docs = ",".join(canonical(row.get(name)) for name in JSON_FIELDS)
    return f"{head},{docs}]"


def payload_parts(row: Mapping[str, Any]) -> tuple[str, str]:
    """``(rest, tail)`` with ``payload == "[" + str(id) + rest + prev_hash + tail``.

    What PostgreSQL needs to hash an entry whose id and previous hash it picks itself (the
    single-statement append); a test checks it against ``payload_of``.
    """
    full = payload_of({**row, "id": 0, "prev_hash": ""})
    head = payload_head(0, row.get("book_id"), row.get("pipeline_id"), row.get("action"), row.get("actor"),
                        row.get("reason"), row.get("confidence_at_decision"), to_millis(row["performed_at"]), "")
    # head is '[0,...,"' + '"': drop the id (first two characters) and the closing quote of prev_hash
    rest = head[2:-1]
    return rest, '"' + full[len(head):]


def compute_hash(row: Mapping[str, Any], key: bytes | None = None) -> str:
    """The hash of a row: every field in ``HASHED_FIELDS`` (HMAC when ``key`` is given)."""
    return digest(payload_of(row), key)


# ----------------------------------------------------------------- verifying (pure)
@dataclasses.dataclass
class Problem:
    """The first entry that does not verify: its id, what kind of damage, in words."""

    entry_id: int
    kind: str  # edited | deleted | inserted | rechained | unkeyed
    message: str


@dataclasses.dataclass
class Verdict:
    count: int = 0
    first_id: int | None = None
    last_id: int | None = None
    last_hash: str = GENESIS
    pruned_ids: int = 0
    unkeyed: int = 0
    keyed: bool = False
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclasses.dataclass(frozen=True)
class Removed:
    """A run of ids retention removed; ``boundary`` starts the hash of its last entry."""

    first: int
    last: int
    boundary: str


def merge_removed(runs: list[Removed]) -> list[Removed]:
    """Sorted, merged runs (a later prune can remove the neighbours of an earlier run)."""
    out: list[Removed] = []
    for run in sorted(runs, key=lambda r: r.first):
        if out and run.first <= out[-1].last + 1:
            prev = out[-1]
            keep = run if run.last >= prev.last else prev
            out[-1] = Removed(prev.first, max(prev.last, run.last), keep.boundary)
        else:
            out.append(run)
    return out


def payloads_of_row(row: tuple) -> list[bytes]:
    """Candidate payloads of a full scan row (``db.audit_scan.FULL_COLUMNS``): stored JSON text spliced, re-encoded.

    The re-encoded form covers documents whose stored text is not canonical (PostgreSQL rows
    written as JSONB before migration 0004); a document that is not JSON at all matches nothing.
    """
    head = payload_head(*row[:9])
    docs = [d if d is not None else "null" for d in row[10:13]]
    out = [f"{head},{docs[0]},{docs[1]},{docs[2]}]"]
    try:
        slow = f"{head},{','.join(d if d == 'null' else canonical(json.loads(d)) for d in docs)}]"
    except (TypeError, ValueError):
        slow = out[0]
    if slow != out[0]:
        out.append(slow)
    return [p.encode("utf-8") for p in out]


def verify_rows(rows, removed: list[Removed], key: bytes | None = None, full_row=None,
                require_key: bool = False) -> Verdict:
    """Walk ``rows`` (id order) and return the verdict: the count, or the first entry that does not match.

    Each row is ``(id, prev_hash, entry_hash, check)``: ``check`` is True when the database
    already compared SHA-256 of the canonical payload with ``entry_hash``, the canonical payload
    as bytes for this walk to hash, or False/None when the database could not build it. Anything
    but a match asks ``full_row(id)`` for the whole row (``db.audit_scan.FULL_COLUMNS``) and
    decides from that, so the fast forms only ever accept, never reject. ``require_key``: with a
    key, a plain SHA-256 entry is a problem even at the start of the trail (for a trail keyed from
    its first entry: otherwise a whole trail rewritten with plain hashes reads as "older, unkeyed").
    """
    verdict = Verdict(keyed=key is not None)
    runs = merge_removed(removed)
    k, prev_id, prev_hash = 0, 0, GENESIS
    no_run = 1 << 62
    limit = -1  # the first row takes the careful branch (it records first_id)
    sha = _sha256
    for id_, prev, stored, check in rows:
        if id_ != prev_id + 1 or id_ >= limit:
            if verdict.first_id is None:
                verdict.first_id = id_
            while k < len(runs) and runs[k].last < prev_id + 1:
                k += 1
            problem = _check_gap((id_, prev), prev_id, prev_hash, runs[k] if k < len(runs) else None)
            if problem is not None:
                verdict.problem = problem
                return _good_up_to(verdict, prev_id, prev_hash)
            if id_ != prev_id + 1:
                verdict.pruned_ids += id_ - prev_id - 1
                k += 1
            limit = runs[k].first if k < len(runs) else no_run
        elif prev != prev_hash:
            verdict.problem = Problem(id_, "rechained", (
                f"entry {id_}: its prev_hash does not match entry {prev_id}'s hash (entry {prev_id} was edited "
                f"with its hash recomputed, or entry {id_} was inserted or re-chained out of band)"))
            return _good_up_to(verdict, prev_id, prev_hash)
        if check is not True and not (key is None and check and sha(check).hexdigest() == stored):
            if not _hash_ok(id_, stored, check, key, verdict, full_row, require_key):
                return _good_up_to(verdict, prev_id, prev_hash)
        prev_id, prev_hash = id_, stored
        verdict.count += 1
    return _good_up_to(verdict, prev_id, prev_hash)


def _good_up_to(verdict: Verdict, last_id: int, last_hash: str) -> Verdict:
    """The verdict's last good entry: the chain's head when intact, else the entry before the problem."""
    verdict.last_id, verdict.last_hash = (last_id or None), last_hash
    return verdict


def _hash_ok(id_: int, stored: str, check, key: bytes | None, verdict: Verdict, full_row,
             require_key: bool = False) -> bool:
    """The careful check: every candidate payload, keyed and plain; records the problem when none matches."""
    candidates = [check] if isinstance(check, bytes) else []
    row = full_row(id_) if full_row is not None else None
    if row is not None:
        if row[7] is None:  # ``db.audit_scan``: the stored time is not the whole millisecond the entry was hashed at
            verdict.problem = Problem(id_, "edited", (
                f"entry {id_}: its performed_at is not the whole millisecond it was written and hashed at "
                "(edited out of band)"))
            return False
        candidates += [p for p in payloads_of_row(row) if p not in candidates]
    plain = False
    for payload in candidates:
        if key is not None and hmac.digest(key, payload, "sha256").hex() == stored:
            return True
        if _sha256(payload).hexdigest() == stored:
            plain = True
            break
    if plain and key is None:
        return True
    if plain:
        if require_key:
            verdict.problem = Problem(id_, "unkeyed", (
                f"entry {id_}: its hash is plain SHA-256, not keyed with AGENTIC_PIPELINE_AUDIT_KEY, and the key "
                "is required from the first entry (written without the key: forged or rewritten out of band)"))
            return False
        if verdict.count > verdict.unkeyed:  # keyed entries came before: this one was written without the key
            verdict.problem = Problem(id_, "unkeyed", (
                f"entry {id_}: its hash is plain SHA-256, not keyed with AGENTIC_PIPELINE_AUDIT_KEY, after "
                f"keyed entries (written without the key: forged out of band)"))
            return False
        verdict.unkeyed += 1
        return True
    hint = "" if key is not None else " (or written with an audit key: set AGENTIC_PIPELINE_AUDIT_KEY)"
    verdict.problem = Problem(id_, "edited",
                              f"entry {id_}: its content does not match its hash (edited out of band){hint}")
    return False


def _check_gap(row: tuple, prev_id: int, prev_hash: str, run: Removed | None) -> Problem | None:
    """Ids missing before ``row`` must be one run removed by retention, and ``row`` must chain to it."""
    id_, expected = row[0], prev_id + 1  # row: (id, prev_hash)
    if id_ < expected:
        return Problem(id_, "inserted", f"entry {id_} is out of order after entry {prev_id}")
    if run is not None and run.first <= id_ <= run.last:
        return Problem(id_, "inserted", (f"entry {id_} lies in ids {run.first}..{run.last} that retention "
                                         "removed (inserted out of band)"))
    if id_ == expected:
        if row[1] != prev_hash:
            return Problem(id_, "rechained", f"entry {id_}: its prev_hash does not match entry {prev_id}'s hash")
        return None
    missing = f"{expected}" if expected == id_ - 1 else f"{expected}..{id_ - 1}"
    if run is None or run.first > expected or run.last < id_ - 1:
        return Problem(id_, "deleted", (f"entries {missing} before entry {id_} are missing and no "
                                        "RETENTION_PRUNED entry accounts for them (deleted out of band)"))
    if not row[1].startswith(run.boundary):
        return Problem(id_, "rechained", (f"entry {id_}: its prev_hash does not match the hash retention "
                                          f"recorded for entry {id_ - 1}, removed by retention"))
    return None
