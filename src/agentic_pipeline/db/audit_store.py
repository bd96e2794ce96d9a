"""SQL for the audit trail: appending inside the caller's transaction, queries, the verify scan, pruning.

Appends are serialised (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL) so the
chain has one order: each entry takes ``id = max(id) + 1`` and the previous entry's hash. On
SQLite the JSON columns are stored as the canonical JSON text the hash covers, so ``verify``
can hash the stored text without decoding it. The only DELETE is ``prune``: it grants the ids
in ``audit_prune_grants`` (the triggers refuse any other delete), deletes, revokes, in one
transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Iterator

import sqlalchemy as sa

from agentic_pipeline.audit import chain
from agentic_pipeline.db.schema import approval_audit as audit
from agentic_pipeline.db.schema import audit_prune_grants as grants

#: PostgreSQL advisory lock key serialising appends, so the chain has one order
AUDIT_LOCK_KEY = 7261002
#: rows per fetch while streaming the chain
SCAN_BATCH = 20_000
#: columns the verify scan reads, in the order ``chain`` expects
SCAN_COLUMNS = ("id", "book_id", "pipeline_id", "action", "actor", "reason", "confidence_at_decision",
                "performed_at", "prev_hash", "entry_hash", "before_state", "after_state", "filter_used")
QUERY_COLUMNS = [audit.c[name] for name in ("id", "performed_at", "action", "actor", "pipeline_id", "book_id",
                                            "reason", "before_state", "after_state", "filter_used",
                                            "confidence_at_decision")]


# ----------------------------------------------------------------- appending
# built once: constructing a statement costs more than running it
_LOCK = sa.select(sa.func.pg_advisory_xact_lock(AUDIT_LOCK_KEY))
_LAST = sa.select(audit.c.id, audit.c.entry_hash).order_by(audit.c.id.desc()).limit(1)


def _head(conn: sa.Connection) -> tuple[int, str]:
    """Lock the chain for this transaction; the next id and the hash to chain to."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK)
    last = conn.execute(_LAST).first()
    return ((last.id + 1), last.entry_hash) if last else (1, chain.GENESIS)


def _row(entry: chain.AuditEntry, id_: int, prev_hash: str, performed_at: dt.datetime,
         key: bytes | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": id_, "book_id": entry.book_id, "pipeline_id": entry.pipeline_id,
        "action": str(entry.action), "actor": entry.actor, "reason": entry.reason,
        "before_state": entry.before_state, "after_state": entry.after_state,
        "filter_used": entry.filter_used, "confidence_at_decision": entry.confidence_at_decision,
        "performed_at": performed_at, "prev_hash": prev_hash,
    }
    row["entry_hash"] = chain.compute_hash(row, key)
    return row


def _stored(conn: sa.Connection, row: dict[str, Any]) -> dict[str, Any]:
    """On SQLite, bind the JSON documents as their canonical text (what the hash covers)."""
    if conn.dialect.name != "sqlite":
        return row
    out = dict(row)
    for name in chain.JSON_FIELDS:
        out[name] = None if row[name] is None else chain.canonical(row[name])
    return out


_SQLITE_INSERT = None


def _insert(conn: sa.Connection):
    if conn.dialect.name != "sqlite":
        return audit.insert()
    global _SQLITE_INSERT
    if _SQLITE_INSERT is None:  # JSON columns typed as Text: the canonical text goes in unchanged
        cols = {c.name: sa.bindparam(c.name, type_=sa.Text if c.name in chain.JSON_FIELDS else c.type)
                for c in audit.c}
        _SQLITE_INSERT = audit.insert().values(cols)
    return _SQLITE_INSERT


def append(conn: sa.Connection, entry: chain.AuditEntry, now: dt.datetime) -> dict[str, Any]:
    """Append ``entry`` in ``conn``'s transaction, chained to the newest entry; returns the row."""
    next_id, prev_hash = _head(conn)
    row = _row(entry, next_id, prev_hash, chain.truncate_to_millis(now), chain.audit_key())
    conn.execute(_insert(conn), [_stored(conn, row)])
    return row


def append_many(conn: sa.Connection, entries: list[chain.AuditEntry], now: dt.datetime) -> list[dict[str, Any]]:
    """Append ``entries`` in order, in ``conn``'s transaction: one read of the chain head, one executemany.

    Same rows and hashes as calling ``append`` once per entry, without a round trip per entry
    (batch operations write thousands of rows inside one chunk).
    """
    if not entries:
        return []
    next_id, prev_hash = _head(conn)
    performed_at, key = chain.truncate_to_millis(now), chain.audit_key()
    rows: list[dict[str, Any]] = []
    for offset, entry in enumerate(entries):
        row = _row(entry, next_id + offset, prev_hash, performed_at, key)
        prev_hash = row["entry_hash"]
        rows.append(row)
    conn.execute(_insert(conn), [_stored(conn, r) for r in rows])
    return rows


# ----------------------------------------------------------------- queries
def like_pattern(glob: str) -> tuple[str, str]:
    """A shell glob (``*``, ``?``) as a SQL LIKE pattern (escape ``\\``) plus its literal prefix."""
    out, prefix, literal = [], [], True
    for ch in glob:
        if ch in "*?":
            out.append("%" if ch == "*" else "_")
            literal = False
            continue
        out.append("\\" + ch if ch in "%_\\" else ch)
        if literal:
            prefix.append(ch)
    return "".join(out), "".join(prefix)


#: a glob matching more entries than this is answered by scanning newest-first instead of via the actor index
GLOB_SORT_CAP = 5_000


def _prefix_range(column, prefix: str):
    return sa.and_(column >= prefix, column < prefix[:-1] + chr(ord(prefix[-1]) + 1))


def _actor_condition(glob: str, time_scan: bool = False):
    pattern, prefix = like_pattern(glob)
    if not any(c in glob for c in "*?"):  # no wildcard: equality, served in order by (actor, performed_at)
        return audit.c.actor == glob
    column = audit.c.actor.concat("") if time_scan else audit.c.actor  # ``actor || ''`` cannot use the index
    conditions = [column.like(pattern, escape="\\")]
    if prefix:  # a range on the literal prefix lets the (actor, performed_at) index narrow the scan
        conditions.append(_prefix_range(column, prefix))
    return sa.and_(*conditions)


def _glob_is_common(conn: sa.Connection, glob: str) -> bool:
    """More than ``GLOB_SORT_CAP`` entries under the glob's literal prefix (an index-only, capped count)."""
    _pattern, prefix = like_pattern(glob)
    if not prefix or not any(c in glob for c in "*?"):
        return False
    capped = sa.select(audit.c.id).where(_prefix_range(audit.c.actor, prefix)).limit(GLOB_SORT_CAP + 1).subquery()
    return conn.execute(sa.select(sa.func.count()).select_from(capped)).scalar_one() > GLOB_SORT_CAP


def query_statement(*, actor: str | None = None, action: str | None = None, book_id: int | None = None,
                    pipeline_id: int | None = None, since: dt.datetime | None = None, limit: int = 100,
                    time_scan: bool = False):
    """The SELECT behind ``audit``: filters ANDed, newest first (``time_scan``: keep off the actor index)."""
    where = []
    if actor:
        where.append(_actor_condition(actor, time_scan))
    if action:
        where.append(audit.c.action == action)
    if book_id is not None:
        where.append(audit.c.book_id == book_id)
    if pipeline_id is not None:
        where.append(audit.c.pipeline_id == pipeline_id)
    if since is not None:
        where.append(audit.c.performed_at >= since)
    return (sa.select(*QUERY_COLUMNS).where(*where)
            .order_by(audit.c.performed_at.desc(), audit.c.id.desc()).limit(limit))


def query(conn: sa.Connection, **filters: Any) -> list[dict[str, Any]]:
    """Run the query; a common actor glob on SQLite scans newest-first (no statistics to pick that itself)."""
    if filters.get("actor") and conn.dialect.name == "sqlite" and _glob_is_common(conn, filters["actor"]):
        filters["time_scan"] = True
    return [dict(r._mapping) for r in conn.execute(query_statement(**filters))]


# ----------------------------------------------------------------- the verify scan
def pruned_records(conn: sa.Connection) -> list[tuple[int, Any]]:
    """(id, after_state) of every RETENTION_PRUNED entry: the ranges retention removed."""
    rows = conn.execute(sa.select(audit.c.id, audit.c.after_state)
                        .where(audit.c.action == "RETENTION_PRUNED").order_by(audit.c.id))
    return [(r.id, r.after_state) for r in rows]


def scan(conn: sa.Connection) -> Iterator[tuple]:
    """Every entry in id order as ``SCAN_COLUMNS`` tuples, streamed through the raw driver.

    ``performed_at`` comes as integer milliseconds; JSON documents as JSON text (canonical on
    SQLite as written by ``append``) or None.
    """
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        yield from _scan_postgres(raw)
        return
    cols = list(SCAN_COLUMNS)
    cols[7] = "CAST(round(performed_at * 1000) AS INTEGER)"
    cur = raw.cursor()
    cur.arraysize = SCAN_BATCH
    cur.execute(f"SELECT {', '.join(cols)} FROM approval_audit ORDER BY id")
    while batch := cur.fetchmany():
        yield from batch
    cur.close()


def _scan_postgres(raw) -> Iterator[tuple]:
    cols = list(SCAN_COLUMNS)
    cols[7] = "round(extract(epoch FROM performed_at) * 1000)::bigint"
    for i in (10, 11, 12):
        cols[i] = f"{SCAN_COLUMNS[i]}::text"
    with raw.cursor(name="audit_verify_scan") as cur:
        cur.itersize = SCAN_BATCH
        cur.execute(f"SELECT {', '.join(cols)} FROM approval_audit ORDER BY id")
        yield from cur


def count(conn: sa.Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar_one()


# ----------------------------------------------------------------- retention
def prune_candidates(conn: sa.Connection, before: dt.datetime, keep_actions: Iterable[str]) -> Iterator[sa.Row]:
    """(id, action, performed_at, entry_hash) of entries older than ``before``, in id order."""
    query = (sa.select(audit.c.id, audit.c.action, audit.c.performed_at, audit.c.entry_hash)
             .where(audit.c.performed_at < before, audit.c.action.not_in(list(keep_actions)))
             .order_by(audit.c.id))
    yield from conn.execute(query)


def lock_chain(conn: sa.Connection) -> None:
    """Serialise with appends (PostgreSQL; SQLite's write transaction already is)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK)


def delete_ranges(conn: sa.Connection, ranges: list[tuple[int, int]]) -> int:
    """Delete every entry whose id is in ``ranges`` through the grants path; returns the count."""
    if not ranges:
        return 0
    pick = sa.select(audit.c.id).where(audit.c.id.between(sa.bindparam("lo"), sa.bindparam("hi")))
    conn.execute(grants.insert().from_select(["audit_id"], pick), [{"lo": a, "hi": b} for a, b in ranges])
    removed = conn.execute(audit.delete().where(audit.c.id.in_(sa.select(grants.c.audit_id)))).rowcount
    conn.execute(grants.delete())
    return removed
