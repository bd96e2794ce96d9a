"""The verify scan: every audit entry in id order, its canonical payload built (and on PostgreSQL hashed) by the database.

Each engine builds an entry's payload (``chain.payload_of``) from the stored columns, or NULL
when it cannot vouch for the exact text; then ``chain.verify_rows`` asks ``FullRows`` for the
whole row and decides in Python. The forms are faithful (a string is JSON-quoted by the engine,
a float is used only if its text reads back as the same value, a value of the wrong SQLite
storage class yields NULL, a document only if it is valid JSON): a payload built from an edited
row can never equal the payload the entry was hashed over, so the fast path only accepts.
Rows stream through the raw driver in large batches.
"""

from __future__ import annotations

from typing import Iterator

import sqlalchemy as sa

from agentic_pipeline.audit import chain

#: rows per fetch while streaming the chain
SCAN_BATCH = 20_000
#: rows per query on the walk's careful path
FULL_BATCH = 2_000
#: columns of a whole entry for the careful path of verify, in the order ``chain.payloads_of_row`` expects
FULL_COLUMNS = ("id", "book_id", "pipeline_id", "action", "actor", "reason", "confidence_at_decision",
                "performed_at", "prev_hash", "entry_hash", "before_state", "after_state", "filter_used")

_SQLITE_INT = "CASE typeof({c}) WHEN 'integer' THEN {c} WHEN 'null' THEN 'null' END"
_SQLITE_STR = "CASE typeof({c}) WHEN 'text' THEN json_quote({c}) WHEN 'null' THEN 'null' END"
_SQLITE_FLOAT = ("CASE typeof({c}) WHEN 'null' THEN 'null' WHEN 'real' THEN "
                 "CASE WHEN CAST(CAST({c} AS TEXT) AS REAL) = {c} THEN CAST({c} AS TEXT) END END")
_SQLITE_DOC = "CASE WHEN {c} IS NULL THEN 'null' WHEN typeof({c}) = 'text' AND json_valid({c}) THEN {c} END"
# the time enters the payload only when the stored value is exactly the whole millisecond it was hashed
# at (``chain.truncate_to_millis`` at append): a value off by even a microsecond yields NULL, never the
# rounded millisecond, so a sub-millisecond edit cannot verify (migration 0008)
_SQLITE_MILLIS = ("CASE WHEN typeof(performed_at) IN ('real', 'integer') "
                  "AND performed_at = round(performed_at * 1000) / 1000.0 "
                  "THEN CAST(round(performed_at * 1000) AS INTEGER) END")
_PG_INT = "COALESCE({c}::text, 'null')"
_PG_STR = "COALESCE(to_json({c})::text, 'null')"
_PG_FLOAT = ("CASE WHEN {c} IS NULL THEN 'null' WHEN {c}::text::float8 <> {c} THEN NULL "  # PG prints 1.0 as 1:
             "WHEN {c} = trunc({c}) AND abs({c}) < 1e16 THEN {c}::text || '.0' ELSE {c}::text END")  # Python as 1.0
_PG_DOC = "COALESCE({c}::text, 'null')"  # json keeps valid JSON text verbatim
_PG_MILLIS = ("CASE WHEN performed_at = date_trunc('milliseconds', performed_at) "
              "THEN round(extract(epoch FROM performed_at) * 1000)::bigint END")
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
        for batch in _batches(cur):
            yield from batch
    finally:
        cur.close()


def _scan_postgres(raw, key: bytes | None) -> Iterator[tuple]:
    payload = f"convert_to({payload_sql('postgresql')}, 'UTF8')"
    check = f"encode(sha256({payload}), 'hex') = entry_hash" if key is None else payload
    raw.execute("SET LOCAL extra_float_digits = 1")  # shortest exact float text (the default since PG 12)
    with raw.cursor(name="audit_verify_scan") as cur:
        cur.execute(f"SELECT id, prev_hash, entry_hash, {check} FROM approval_audit ORDER BY id")
        for batch in _batches(cur):
            yield from batch


def _batches(cur) -> Iterator[list]:
    """``cur``'s rows in large batches.

    A reader thread fetching the next batch while the walk hashes this one was measured
    (300,000 entries, both engines, five A/B runs): no gain beyond the noise of this shared
    2-core machine, since building the rows holds the GIL as long as the walk does. Not kept.
    """
    while batch := cur.fetchmany(SCAN_BATCH):
        yield batch


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
