"""SQL for the audit trail: appending inside the caller's transaction, queries, pruning (the verify scan: audit_scan).

Appends are serialised so the chain has one order. SQLite: the ``BEGIN IMMEDIATE`` write
transaction; each entry takes ``id = max(id) + 1`` and the previous entry's hash. PostgreSQL:
the one-row ``audit_chain_head`` (migration 0004), locked and advanced by the same statement
that inserts the entry, with the SHA-256 computed by the server over the canonical payload
Python prepared around the id and previous hash: one round trip per append. On both engines
the JSON columns hold the canonical JSON text the hash covers (``json``, not ``jsonb``, on
PostgreSQL), so ``verify`` has the database build each payload from the stored text.
The only DELETE is ``prune``: it grants the ids in ``audit_prune_grants`` (the triggers
refuse any other delete), deletes, revokes, in one transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Iterator, Sequence

import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.audit import chain
from agentic_pipeline.db.schema import approval_audit as audit
from agentic_pipeline.db.schema import audit_prune_grants as grants
from agentic_pipeline.db.batch_store import glob_condition

QUERY_COLUMNS = [audit.c[name] for name in ("id", "performed_at", "action", "actor", "pipeline_id", "book_id",
                                            "reason", "before_state", "after_state", "filter_used",
                                            "confidence_at_decision")]


# ----------------------------------------------------------------- appending
# built once: constructing a statement costs more than running it
_LAST = sa.select(audit.c.id, audit.c.entry_hash).order_by(audit.c.id.desc()).limit(1)
_DATA_COLUMNS = ("book_id", "pipeline_id", "action", "actor", "reason", "before_state", "after_state",
                 "filter_used", "confidence_at_decision", "performed_at")
_PG_TYPES = {"book_id": "bigint", "pipeline_id": "bigint", "action": "text", "actor": "text", "reason": "text",
             "before_state": "json", "after_state": "json", "filter_used": "json",
             "confidence_at_decision": "double precision", "performed_at": "timestamptz"}
#: PostgreSQL, unkeyed: lock and advance the head, hash and insert, in one statement (one round trip).
#: ``FOR UPDATE`` waits for a concurrent append and then reads the head it committed.
_PG_APPEND = sa.text(f"""
WITH head AS (SELECT last_id + 1 AS id, last_hash AS prev FROM audit_chain_head WHERE id = 1 FOR UPDATE),
entry AS (SELECT id, prev, encode(sha256(convert_to('[' || id || :rest || prev || :tail, 'UTF8')), 'hex') AS hash
          FROM head),
moved AS (UPDATE audit_chain_head h SET last_id = e.id, last_hash = e.hash FROM entry e WHERE h.id = 1)
INSERT INTO approval_audit (id, {", ".join(_DATA_COLUMNS)}, prev_hash, entry_hash)
SELECT e.id, {", ".join(f"CAST(:{c} AS {_PG_TYPES[c]})" for c in _DATA_COLUMNS)}, e.prev, e.hash FROM entry e
RETURNING id, prev_hash, entry_hash""")
#: PostgreSQL, keyed or several entries: reserve ids (locking the head), insert, then set the head's hash
_PG_RESERVE = sa.text("UPDATE audit_chain_head SET last_id = last_id + :n WHERE id = 1 RETURNING last_id, last_hash")
_PG_SET_HASH = sa.text("UPDATE audit_chain_head SET last_hash = :h WHERE id = 1")
_PG_LOCK = sa.text("SELECT last_id FROM audit_chain_head WHERE id = 1 FOR UPDATE")
_PG_REBUILD = sa.text(f"""
INSERT INTO audit_chain_head (id, last_id, last_hash)
SELECT 1, COALESCE(max(id), 0),
       COALESCE((SELECT entry_hash FROM approval_audit ORDER BY id DESC LIMIT 1), '{chain.GENESIS}')
FROM approval_audit
ON CONFLICT (id) DO UPDATE SET last_id = excluded.last_id, last_hash = excluded.last_hash""")


def _head(conn: sa.Connection) -> tuple[int, str]:
    """SQLite (the write transaction already serialises appends): the next id and the hash to chain to."""
    last = conn.execute(_LAST).first()
    return ((last.id + 1), last.entry_hash) if last else (1, chain.GENESIS)


def _reserve(conn: sa.Connection, n: int) -> tuple[int, str]:
    """PostgreSQL: lock the head, claim ``n`` ids; the first of them and the hash to chain to."""
    head = conn.execute(_PG_RESERVE, {"n": n}).first()
    if head is None:
        raise errors.StoreError("audit_chain_head has no row: run `agentic-pipeline init` to migrate the database")
    return head.last_id - n + 1, head.last_hash


def _row(entry: chain.AuditEntry, id_: int, prev_hash: str, performed_at: dt.datetime,
         key: bytes | None) -> dict[str, Any]:
    row = _fields(entry, performed_at)
    row.update(id=id_, prev_hash=prev_hash)
    row["entry_hash"] = chain.compute_hash(row, key)
    return row


def _fields(entry: chain.AuditEntry, performed_at: dt.datetime) -> dict[str, Any]:
    return {"book_id": entry.book_id, "pipeline_id": entry.pipeline_id, "action": str(entry.action),
            "actor": entry.actor, "reason": entry.reason, "before_state": entry.before_state,
            "after_state": entry.after_state, "filter_used": entry.filter_used,
            "confidence_at_decision": entry.confidence_at_decision, "performed_at": performed_at}


def _stored(conn: sa.Connection, row: dict[str, Any]) -> dict[str, Any]:
    """Bind the JSON documents as their canonical text (what the hash covers), on both engines."""
    out = dict(row)
    for name in chain.JSON_FIELDS:
        out[name] = None if row[name] is None else chain.canonical(row[name])
    return out


_INSERTS: dict[str, Any] = {}


def _insert(conn: sa.Connection):
    """The INSERT with the JSON columns bound as text: the canonical text goes in unchanged.

    PostgreSQL casts it to ``json``; SQLite must not (``CAST(x AS JSON)`` has NUMERIC affinity there).
    """
    dialect = conn.dialect.name
    if dialect not in _INSERTS:
        def bind(c):
            if c.name not in chain.JSON_FIELDS:
                return sa.bindparam(c.name, type_=c.type)
            text = sa.bindparam(c.name, type_=sa.Text)
            return sa.cast(text, c.type) if dialect == "postgresql" else text
        _INSERTS[dialect] = audit.insert().values({c.name: bind(c) for c in audit.c})
    return _INSERTS[dialect]


def append(conn: sa.Connection, entry: chain.AuditEntry, now: dt.datetime) -> dict[str, Any]:
    """Append ``entry`` in ``conn``'s transaction, chained to the newest entry; returns the row."""
    performed_at, key = chain.truncate_to_millis(now), chain.audit_key()
    if conn.dialect.name != "postgresql":
        next_id, prev_hash = _head(conn)
        row = _row(entry, next_id, prev_hash, performed_at, key)
        conn.execute(_insert(conn), [_stored(conn, row)])
        return row
    if key is not None:
        return append_many(conn, [entry], now)[0]
    row = _fields(entry, performed_at)
    rest, tail = chain.payload_parts(row)
    got = _pg_append(conn, {**_stored(conn, row), "rest": rest, "tail": tail})
    if got is None:
        raise errors.StoreError("audit_chain_head has no row: run `agentic-pipeline init` to migrate the database")
    row.update(id=got[0], prev_hash=got[1], entry_hash=got[2])
    return row


_PG_APPEND_SQL: list[str] = []


def _pg_append(conn: sa.Connection, params: dict[str, Any]) -> tuple | None:
    """Run ``_PG_APPEND`` on the raw psycopg connection (same transaction): SQLAlchemy's per-execute
    work costs as much as the round trip itself (0.2-0.35 ms against 0.14 ms, bench/bench_audit.py)."""
    import psycopg  # lazy: the PostgreSQL driver, installed only where PostgreSQL is used

    if not _PG_APPEND_SQL:
        _PG_APPEND_SQL.append(str(_PG_APPEND.compile(dialect=conn.dialect)))
    try:
        return conn.connection.driver_connection.execute(_PG_APPEND_SQL[0], params).fetchone()
    except psycopg.Error as exc:
        raise errors.StoreError(f"database error appending to the audit trail: {str(exc).strip().splitlines()[0]}") \
            from exc


def append_many(conn: sa.Connection, entries: list[chain.AuditEntry], now: dt.datetime) -> list[dict[str, Any]]:
    """Append ``entries`` in order, in ``conn``'s transaction: one read of the chain head, one executemany.

    Same rows and hashes as calling ``append`` once per entry, without a round trip per entry
    (batch operations write thousands of rows inside one chunk).
    """
    if not entries:
        return []
    postgres = conn.dialect.name == "postgresql"
    next_id, prev_hash = _reserve(conn, len(entries)) if postgres else _head(conn)
    performed_at, key = chain.truncate_to_millis(now), chain.audit_key()
    rows: list[dict[str, Any]] = []
    for offset, entry in enumerate(entries):
        row = _row(entry, next_id + offset, prev_hash, performed_at, key)
        prev_hash = row["entry_hash"]
        rows.append(row)
    conn.execute(_insert(conn), [_stored(conn, r) for r in rows])
    if postgres:
        conn.execute(_PG_SET_HASH, {"h": prev_hash})
    return rows


# ----------------------------------------------------------------- bulk appends (batch operations)
_AUDIT_COLUMNS = ("id", "book_id", "pipeline_id", "action", "actor", "reason", "before_state", "after_state",
                  "filter_used", "confidence_at_decision", "performed_at", "prev_hash", "entry_hash")
_AUDIT_SQL = f"INSERT INTO approval_audit ({', '.join(_AUDIT_COLUMNS)}) VALUES ({', '.join('?' * len(_AUDIT_COLUMNS))})"
_LAST_AUDIT = sa.select(audit.c.id, audit.c.entry_hash).order_by(audit.c.id.desc()).limit(1)


def append_bulk(conn: sa.Connection, entries: Sequence[chain.AuditEntry], now: dt.datetime) -> int:
    """Append ``entries`` in ``conn``'s transaction and return how many: the same rows as ``append_many``.

    SQLite: one read of the chain head (the write transaction serialises appends), then per entry
    only its scalar head and one SHA-256 (each distinct JSON document object is encoded once:
    batch entries share them), then one driver executemany. PostgreSQL: ``append_many``
    (it keeps the chain head row). Returns the number of rows written.
    """
    if not entries:
        return 0
    if conn.dialect.name != "sqlite":
        return len(append_many(conn, list(entries), now))
    last = conn.execute(_LAST_AUDIT).first()
    next_id, prev = (last.id + 1, last.entry_hash) if last else (1, chain.GENESIS)
    performed_at, key = chain.truncate_to_millis(now), chain.audit_key()
    millis, when, texts = chain.to_millis(performed_at), performed_at.timestamp(), _TextMemo()
    rows = []
    for offset, e in enumerate(entries):
        docs = (texts(e.before_state), texts(e.after_state), texts(e.filter_used))
        action = str(e.action)
        head = chain.payload_head(next_id + offset, e.book_id, e.pipeline_id, action, e.actor, e.reason,
                                  e.confidence_at_decision, millis, prev)
        entry_hash = chain.digest(f"{head},{docs[0]},{docs[1]},{docs[2]}]", key)
        rows.append((next_id + offset, e.book_id, e.pipeline_id, action, e.actor, e.reason,
                     *(None if t == "null" else t for t in docs), e.confidence_at_decision, when, prev, entry_hash))
        prev = entry_hash
    conn.exec_driver_sql(_AUDIT_SQL, rows)
    return len(rows)


class _TextMemo:
    """Canonical JSON text per document object (kept alive by the entries, so ``id`` is stable)."""

    def __init__(self) -> None:
        self._texts: dict[int, str] = {}

    def __call__(self, doc: Any) -> str:
        if doc is None:
            return "null"
        text = self._texts.get(id(doc))
        if text is None:
            text = self._texts[id(doc)] = chain.canonical(doc)
        return text


def rebuild_head(conn: sa.Connection) -> None:
    """PostgreSQL: point ``audit_chain_head`` at the newest entry (after a bulk load through the raw driver)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_PG_REBUILD)


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
    """``column`` starts with ``prefix``, as a range the index can seek: [prefix, the next string after it)."""
    upper = prefix.rstrip(chr(0x10FFFF))  # nothing sorts after U+10FFFF: shorten the bound instead
    if not upper:
        return column >= prefix
    following = ord(upper[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are not characters: the next one is U+E000
        following = 0xE000
    return sa.and_(column >= prefix, column < upper[:-1] + chr(following))


def _actor_condition(glob: str, time_scan: bool = False, dialect: str = "postgresql"):
    """The actor matches ``glob`` (``*``, ``?``), case-sensitively on both engines (GLOB on SQLite)."""
    _pattern, prefix = like_pattern(glob)
    if not any(c in glob for c in "*?"):  # no wildcard: equality, served in order by (actor, performed_at)
        return audit.c.actor == glob
    column = audit.c.actor.concat("") if time_scan else audit.c.actor  # ``actor || ''`` cannot use the index
    conditions = [glob_condition(column, glob, dialect)]
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
                    time_scan: bool = False, dialect: str = "postgresql", before_id: int | None = None):
    """The SELECT behind ``audit``: filters ANDed, newest first (``time_scan``: keep off the actor index)."""
    where = []
    if actor:
        where.append(_actor_condition(actor, time_scan, dialect))
    if action:
        where.append(audit.c.action == action)
    if book_id is not None:
        where.append(audit.c.book_id == book_id)
    if pipeline_id is not None:
        where.append(audit.c.pipeline_id == pipeline_id)
    if since is not None:
        where.append(audit.c.performed_at >= since)
    if before_id is not None:  # the next page: entries older than the last one shown
        where.append(audit.c.id < before_id)
    return (sa.select(*QUERY_COLUMNS).where(*where)
            .order_by(audit.c.performed_at.desc(), audit.c.id.desc()).limit(limit))


def query(conn: sa.Connection, **filters: Any) -> list[dict[str, Any]]:
    """Run the query; a common actor glob on SQLite scans newest-first (no statistics to pick that itself)."""
    if filters.get("actor") and conn.dialect.name == "sqlite" and _glob_is_common(conn, filters["actor"]):
        filters["time_scan"] = True
    statement = query_statement(**filters, dialect=conn.dialect.name)
    return [dict(m) for m in conn.execute(statement).mappings().all()]  # one fetch, not per row


# ----------------------------------------------------------------- the verify scan
def pruned_records(conn: sa.Connection) -> list[tuple[int, Any]]:
    """(id, after_state) of every RETENTION_PRUNED entry: the ranges retention removed."""
    rows = conn.execute(sa.select(audit.c.id, audit.c.after_state)
                        .where(audit.c.action == "RETENTION_PRUNED").order_by(audit.c.id))
    return [(r.id, r.after_state) for r in rows]


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
    """Serialise with appends (PostgreSQL: lock the head row; SQLite's write transaction already is)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_PG_LOCK)


def delete_ranges(conn: sa.Connection, ranges: list[tuple[int, int]]) -> int:
    """Delete every entry whose id is in ``ranges`` through the grants path; returns the count."""
    if not ranges:
        return 0
    pick = sa.select(audit.c.id).where(audit.c.id.between(sa.bindparam("lo"), sa.bindparam("hi")))
    conn.execute(grants.insert().from_select(["audit_id"], pick), [{"lo": a, "hi": b} for a, b in ranges])
    removed = conn.execute(audit.delete().where(audit.c.id.in_(sa.select(grants.c.audit_id)))).rowcount
    conn.execute(grants.delete())
    return removed
