"""SQL for the audit trail: appending inside the caller's transaction, queries, the verify scan, pruning.

Appends are serialised so the chain has one order. SQLite: the ``BEGIN IMMEDIATE`` write
transaction; each entry takes ``id = max(id) + 1`` and the previous entry's hash. PostgreSQL:
the one-row ``audit_chain_head`` (migration 0004), locked and advanced by the same statement
that inserts the entry, with the SHA-256 computed by the server over the canonical payload
Python prepared around the id and previous hash: one round trip per append. On both engines
the JSON columns hold the canonical JSON text the hash covers (``json``, not ``jsonb``, on
PostgreSQL), so ``verify`` has the database build each payload from the stored text. The only DELETE is ``prune``: it grants the ids
in ``audit_prune_grants`` (the triggers refuse any other delete), deletes, revokes, in one
transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import threading
from typing import Any, Iterable, Iterator

import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.audit import chain
from agentic_pipeline.db.schema import approval_audit as audit
from agentic_pipeline.db.schema import audit_prune_grants as grants

#: rows per fetch while streaming the chain
SCAN_BATCH = 20_000
#: rows per query on the walk's careful path
FULL_BATCH = 2_000
#: columns of a whole entry for the careful path of verify, in the order ``chain.payloads_of_row`` expects
FULL_COLUMNS = ("id", "book_id", "pipeline_id", "action", "actor", "reason", "confidence_at_decision",
                "performed_at", "prev_hash", "entry_hash", "before_state", "after_state", "filter_used")
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
    got = conn.execute(_PG_APPEND, {**_stored(conn, row), "rest": rest, "tail": tail}).first()
    if got is None:
        raise errors.StoreError("audit_chain_head has no row: run `agentic-pipeline init` to migrate the database")
    row.update(id=got.id, prev_hash=got.prev_hash, entry_hash=got.entry_hash)
    return row


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
    return [dict(m) for m in conn.execute(query_statement(**filters)).mappings().all()]  # one fetch, not per row


# ----------------------------------------------------------------- the verify scan
def pruned_records(conn: sa.Connection) -> list[tuple[int, Any]]:
    """(id, after_state) of every RETENTION_PRUNED entry: the ranges retention removed."""
    rows = conn.execute(sa.select(audit.c.id, audit.c.after_state)
                        .where(audit.c.action == "RETENTION_PRUNED").order_by(audit.c.id))
    return [(r.id, r.after_state) for r in rows]


# Each engine builds the canonical payload of an entry from the stored columns, or NULL when it
# cannot vouch for the exact text (then ``chain.verify_rows`` asks for the whole row and decides
# in Python). The forms are faithful (a string is JSON-quoted, a float is used only if its text
# reads back as the same value, a document only if it is valid JSON): so a payload built from an
# edited row can never equal the payload the entry was hashed over, and the fast path only accepts.
_SQLITE_INT = "CASE typeof({c}) WHEN 'integer' THEN {c} WHEN 'null' THEN 'null' END"
_SQLITE_STR = "CASE typeof({c}) WHEN 'text' THEN json_quote({c}) WHEN 'null' THEN 'null' END"
_SQLITE_FLOAT = ("CASE typeof({c}) WHEN 'null' THEN 'null' WHEN 'real' THEN "
                 "CASE WHEN CAST(CAST({c} AS TEXT) AS REAL) = {c} THEN CAST({c} AS TEXT) END END")
_SQLITE_DOC = "CASE WHEN {c} IS NULL THEN 'null' WHEN typeof({c}) = 'text' AND json_valid({c}) THEN {c} END"
_SQLITE_MILLIS = "CAST(round(performed_at * 1000) AS INTEGER)"
_PG_INT = "COALESCE({c}::text, 'null')"
_PG_STR = "COALESCE(to_json({c})::text, 'null')"
_PG_FLOAT = "CASE WHEN {c} IS NULL THEN 'null' WHEN {c}::text::float8 = {c} THEN {c}::text END"
_PG_DOC = "COALESCE({c}::text, 'null')"  # json keeps valid JSON text verbatim
_PG_MILLIS = "round(extract(epoch FROM performed_at) * 1000)::bigint"
_FORMS = {"sqlite": (_SQLITE_INT, _SQLITE_STR, _SQLITE_FLOAT, _SQLITE_DOC, _SQLITE_MILLIS),
          "postgresql": (_PG_INT, _PG_STR, _PG_FLOAT, _PG_DOC, _PG_MILLIS)}


def payload_sql(dialect: str) -> str:
    """The SQL expression of an entry's canonical payload (``chain.payload_of``), NULL if not vouched for."""
    int_, str_, float_, doc, millis = _FORMS[dialect]
    parts = ["id", int_.format(c="book_id"), int_.format(c="pipeline_id"), str_.format(c="action"),
             str_.format(c="actor"), str_.format(c="reason"), float_.format(c="confidence_at_decision"), millis,
             str_.format(c="prev_hash")] + [doc.format(c=c) for c in chain.JSON_FIELDS]
    return "'[' || " + " || ',' || ".join(f"({p})" for p in parts) + " || ']'"


def scan(conn: sa.Connection, key: bytes | None = None) -> Iterator[tuple]:
    """Every entry in id order as ``(id, prev_hash, entry_hash, check)`` (see ``chain.verify_rows``).

    PostgreSQL without a key hashes each payload itself (``check`` is whether it matched: the
    work runs in the server process, beside this one); otherwise ``check`` is the payload as
    bytes. Streamed through the raw driver in large batches.
    """
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        yield from _scan_postgres(raw, key)
        return
    cur = raw.cursor()
    try:
        cur.execute(f"SELECT id, prev_hash, entry_hash, CAST({payload_sql('sqlite')} AS BLOB) "
                    "FROM approval_audit ORDER BY id")
        for batch in _prefetched(cur):
            yield from batch
    finally:
        cur.close()


def _scan_postgres(raw, key: bytes | None) -> Iterator[tuple]:
    payload = f"convert_to({payload_sql('postgresql')}, 'UTF8')"
    check = f"encode(sha256({payload}), 'hex') = entry_hash" if key is None else payload
    raw.execute("SET LOCAL extra_float_digits = 1")  # shortest exact float text (the default since PG 12)
    with raw.cursor(name="audit_verify_scan") as cur:
        cur.execute(f"SELECT id, prev_hash, entry_hash, {check} FROM approval_audit ORDER BY id")
        for batch in _prefetched(cur):
            yield from batch


def _prefetched(cur, depth: int = 2) -> Iterator[list]:
    """``cur``'s rows in batches, the next batch fetched by a reader thread while the caller walks this one.

    The database builds (and on PostgreSQL hashes) payloads while the driver waits with the GIL
    released, so the engine's work overlaps the walk's hashing instead of alternating with it.
    Closing the generator early (the walk stopped at a problem) stops and joins the thread
    before the cursor or the transaction goes away.
    """
    out: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                batch = cur.fetchmany(SCAN_BATCH)
                out.put(batch)
                if not batch:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the walking thread
            out.put(exc)

    reader = threading.Thread(target=read, name="audit-verify-reader", daemon=True)
    reader.start()
    try:
        while True:
            batch = out.get()
            if isinstance(batch, BaseException):
                raise batch
            if not batch:
                return
            yield batch
    finally:
        stop.set()
        while reader.is_alive():
            with contextlib.suppress(queue.Empty):
                out.get(timeout=0.05)
        reader.join()


class FullRows:
    """``FULL_COLUMNS`` of an entry by id, fetched a batch ahead (the walk's careful path, ``chain.verify_rows``).

    Rare on an intact chain written by this version; every entry of a PostgreSQL chain written
    as JSONB before migration 0004 takes it, so it reads ``FULL_BATCH`` rows per query.
    """

    def __init__(self, conn: sa.Connection) -> None:
        self.conn, self.rows = conn, {}
        cols = list(FULL_COLUMNS)
        cols[7] = _SQLITE_MILLIS if conn.dialect.name == "sqlite" else _PG_MILLIS
        if conn.dialect.name == "postgresql":
            cols[10:13] = [f"{c}::text" for c in chain.JSON_FIELDS]
        self.sql = sa.text(f"SELECT {', '.join(cols)} FROM approval_audit WHERE id >= :id ORDER BY id LIMIT :n")

    def __call__(self, id_: int) -> tuple | None:
        if id_ not in self.rows:
            self.rows = {r[0]: tuple(r) for r in self.conn.execute(self.sql, {"id": id_, "n": FULL_BATCH})}
        return self.rows.get(id_)


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
