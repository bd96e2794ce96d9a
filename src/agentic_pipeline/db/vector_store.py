"""SQL for the vector index: the change log, vectors streamed in bulk or fetched by id, and pgvector.

The index (``library.vector_index``) is a derived cache of ``chunks.embedding``; everything it
knows comes through here. Vectors are read with the driver's own cursor in large batches and
joined into one buffer: going through SQLAlchemy rows one at a time was 4–5 s per million.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import sqlalchemy as sa

from agentic_pipeline.db import search_store
from agentic_pipeline.db.schema import vector_log

BATCH = 20_000


def log_head(conn: sa.Connection) -> int:
    """The newest vector_log id (0 when empty): what an index has seen when it is current."""
    return conn.execute(sa.select(sa.func.coalesce(sa.func.max(vector_log.c.id), 0))).scalar_one()


def changed_books(conn: sa.Connection, after: int, upto: int) -> set[int]:
    """Books whose vectors were written or removed between two log ids."""
    rows = conn.execute(sa.select(vector_log.c.book_id).where(vector_log.c.id > after, vector_log.c.id <= upto)
                        .distinct())
    return {r[0] for r in rows}


def stream_vectors(conn: sa.Connection, model: str, dim: int, book_ids: Sequence[int] | None = None
                   ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(chunk ids, book ids, float32 matrix) in batches by id, for every chunk embedded with ``model``.

    Each batch is a finished query (keyset pagination), so the connection is free between batches.
    """
    where = "" if book_ids is None else f" AND book_id IN ({','.join(str(int(b)) for b in book_ids)})"
    sql = ("SELECT id, book_id, embedding FROM chunks WHERE id > {p} AND embedding_model = {p} "
           f"AND embedding_dim = {{p}} AND embedding IS NOT NULL{where} ORDER BY id LIMIT {BATCH}")
    sql = sql.format(p="?" if conn.dialect.name == "sqlite" else "%s")
    raw = conn.connection.dbapi_connection
    last = -1
    while True:
        cur = raw.cursor()
        try:
            cur.execute(sql, (last, model, dim))
            rows = cur.fetchall()
        finally:
            cur.close()
        if not rows:
            return
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        books = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
        mat = np.frombuffer(b"".join(bytes(r[2]) for r in rows), dtype="<f4").reshape(len(rows), dim)
        last = int(ids[-1])
        yield ids, books, mat


def exact_vectors(conn: sa.Connection, ids: Sequence[int], model: str, *,
                  book_id: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 matrix) of the given chunks that are searchable (COMPLETE books) and embedded with ``model``.

    The source of truth for every score: the index only proposes candidates.
    """
    if not len(ids):
        return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
    sql = sa.text("SELECT id, embedding, embedding_dim, book_id FROM chunks WHERE id IN :ids AND embedding_model = :m "
                  "AND embedding IS NOT NULL").bindparams(sa.bindparam("ids", expanding=True))
    rows = conn.execute(sql, {"ids": [int(i) for i in ids], "m": model}).all()
    ok = search_store.complete_books(conn, {r[3] for r in rows})
    return _matrix([r for r in rows if r[3] in ok and (book_id is None or r[3] == book_id)])


def raw_vectors(conn: sa.Connection, ids: Sequence[int], model: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 matrix) of the given chunks embedded with ``model``, whatever their book's state."""
    if not len(ids):
        return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
    sql = sa.text("SELECT id, embedding, embedding_dim FROM chunks WHERE id IN :ids AND embedding_model = :m "
                  "AND embedding IS NOT NULL").bindparams(sa.bindparam("ids", expanding=True))
    return _matrix(conn.execute(sql, {"ids": [int(i) for i in ids], "m": model}).all())


def searchable(conn: sa.Connection, ids: Sequence[int]) -> set[int]:
    """The given chunk ids whose book's pipeline is COMPLETE."""
    if not ids:
        return set()
    sql = sa.text("SELECT id, book_id FROM chunks WHERE id IN :ids").bindparams(sa.bindparam("ids", expanding=True))
    rows = conn.execute(sql, {"ids": [int(i) for i in ids]}).all()
    ok = search_store.complete_books(conn, {r[1] for r in rows})
    return {r[0] for r in rows if r[1] in ok}


def book_vectors(conn: sa.Connection, book_id: int, model: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 matrix) of one searchable book's chunks embedded with ``model``."""
    if book_id not in search_store.complete_books(conn, {book_id}):
        return _matrix([])
    rows = conn.execute(sa.text(
        "SELECT id, embedding, embedding_dim FROM chunks WHERE book_id = :b AND embedding_model = :m "
        "AND embedding IS NOT NULL ORDER BY id"), {"b": book_id, "m": model}).all()
    return _matrix(rows)


def _matrix(rows) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
    dim = rows[0][2]
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    return ids, np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype="<f4").reshape(len(rows), dim)


# --------------------------------------------------------------------------- pgvector (PostgreSQL only)

PGV_TABLE = "chunk_vectors"
PGV_STATE = "chunk_vectors_state"


def pgvector_available(conn: sa.Connection) -> bool:
    """True when the server can (or already does) provide the ``vector`` extension."""
    return conn.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first() is not None


def pgvector_state(conn: sa.Connection) -> dict[str, Any] | None:
    """The HNSW table's model, dim and last log id, or None when it does not exist yet."""
    exists = conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": PGV_STATE}).scalar()
    if exists is None:
        return None
    row = conn.execute(sa.text(f"SELECT model, dim, log_seq FROM {PGV_STATE}")).first()
    return dict(row._mapping) if row else None


def pgvector_create(conn: sa.Connection, model: str, dim: int) -> None:
    """(Re)create the derived table and its HNSW index for ``model`` (cosine = inner product: unit vectors)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7261019)"))
    conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {PGV_TABLE}"))
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {PGV_STATE}"))
    conn.execute(sa.text(
        f"CREATE TABLE {PGV_TABLE} (chunk_id bigint PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE, "
        f"book_id bigint NOT NULL, embedding vector({int(dim)}) NOT NULL)"))
    conn.execute(sa.text(f"CREATE INDEX ix_{PGV_TABLE}_book ON {PGV_TABLE} (book_id)"))
    conn.execute(sa.text(f"CREATE TABLE {PGV_STATE} (model text NOT NULL, dim integer NOT NULL, log_seq bigint NOT NULL)"))
    conn.execute(sa.text(f"INSERT INTO {PGV_STATE} VALUES (:m, :d, 0)"), {"m": model, "d": dim})


def pgvector_build_graph(conn: sa.Connection) -> None:
    """The HNSW index over the copied rows (inner product: the vectors are unit length)."""
    conn.execute(sa.text("SET LOCAL maintenance_work_mem = '256MB'"))
    conn.execute(sa.text(f"CREATE INDEX ix_{PGV_TABLE}_hnsw ON {PGV_TABLE} USING hnsw (embedding vector_ip_ops) "
                         "WITH (m = 16, ef_construction = 64)"))


def pgvector_lock(conn: sa.Connection) -> None:
    """One catch-up at a time across hosts (held to the end of the transaction)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7261019)"))


def pgvector_replace_books(conn: sa.Connection, model: str, dim: int, book_ids: Sequence[int] | None,
                           log_seq: int) -> int:
    """Copy the books' vectors (all books when None) from ``chunks`` into the HNSW table; returns rows copied.

    SQL cannot turn a float32 blob into a ``vector``, so each batch goes through the driver's COPY as
    vector literals; the HNSW index is maintained as rows arrive.
    """
    where = "" if book_ids is None else f" WHERE book_id IN ({','.join(str(int(b)) for b in book_ids)})"
    conn.execute(sa.text(f"DELETE FROM {PGV_TABLE}{where}"))
    copied = 0
    raw = conn.connection.dbapi_connection
    for ids, books, mat in stream_vectors(conn, model, dim, book_ids):
        with raw.cursor().copy(f"COPY {PGV_TABLE} (chunk_id, book_id, embedding) FROM STDIN") as copy:
            for cid, bid, line in zip(ids.tolist(), books.tolist(), _vector_texts(mat)):
                copy.write_row((cid, bid, line))
        copied += len(ids)
    conn.execute(sa.text(f"UPDATE {PGV_STATE} SET log_seq = :s"), {"s": log_seq})
    return copied


def _vector_texts(mat: np.ndarray) -> list[str]:
    return ["[" + ",".join(f"{x:.7g}" for x in row) + "]" for row in mat.tolist()]


def pgvector_search(conn: sa.Connection, qvec: np.ndarray, k: int, *, ef_search: int = 100) -> list[tuple[int, float]]:
    """(chunk id, cosine) of the HNSW index's ``k`` nearest chunks, best first (callers re-rank exactly)."""
    conn.execute(sa.text(f"SET LOCAL hnsw.ef_search = {int(max(ef_search, k))}"))
    q = "[" + ",".join(f"{x:.7g}" for x in np.asarray(qvec, dtype=np.float32).tolist()) + "]"
    sql = sa.text(f"SELECT chunk_id, embedding <#> CAST(:q AS vector) AS d FROM {PGV_TABLE} ORDER BY d LIMIT :k")
    return [(r[0], -float(r[1])) for r in conn.execute(sql, {"q": q, "k": k})]
