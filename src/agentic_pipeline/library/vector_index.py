"""The vector index: a derived cache of ``chunks.embedding`` behind one interface, never the source of truth.

``open_index(db, settings, embedder)`` gives what ``library.search`` uses:
``index.sync(db)`` then ``index.search(conn, query_vec, k, book_id=)`` -> ``[(chunk id, cosine)]``
best first, over COMPLETE books only.

* **PostgreSQL with pgvector**: an HNSW index in the database (``chunk_vectors``), shared by every
  host; caught up from ``vector_log`` under an advisory lock by whichever process searches first.
* **Everywhere else** (SQLite; PostgreSQL without the extension): a usearch HNSW graph in files
  (``HnswIndex``): beside a SQLite database (``pipeline.db.vectors/``), under ``data_dir`` for
  PostgreSQL. The CLI memory-maps it (``view``); ``serve``/``mcp`` keep their ``App`` and load it once.
* Either way the graph only proposes candidates: the best ``candidates`` are re-ranked with their
  exact float vectors read from the database by id, so every score comes from the source of truth
  and a chunk that is gone or not searchable is never returned. A search inside one book skips the
  graph: its vectors are read and ranked exactly.

Why HNSW (usearch) and not sign-bit codes: measured in docs/embedding.md: re-ranking the Hamming
nearest 3.4 % of 11,775 real chunks reached only 0.93 recall@10, and that fraction grows with the library.

Catching up: every write of vectors and every removal of a book appends to ``vector_log`` in the
same transaction (``db.library_store``, ``db.batch_store``). The index records the last log id it
reflects; before a search it reads the newest id (one indexed lookup) and, if behind, re-reads only
the books logged since (removing their old entries first). A log that went backwards (another
database at that path), files that fail their checksums or sizes, another model or dimension: the
index is rebuilt from the database, never trusted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
import uuid
import zlib
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np
import sqlalchemy as sa

from agentic_pipeline import errors
from agentic_pipeline.db import vector_store

log = logging.getLogger(__name__)

#: a catch-up touching more than this fraction of the index rebuilds it instead
REBUILD_FRACTION = 0.5
#: HNSW parameters (docs/embedding.md): neighbours per node, breadth while adding and while searching
CONNECTIVITY, EXPANSION_ADD, EXPANSION_SEARCH = 16, 128, 1000
#: scalar type of the stored vectors in the graph (candidates only: scores come from the database)
DTYPE = "i8"
#: graph candidates re-ranked exactly per query (at least; more when more results are asked)
CANDIDATES = 100


class VectorIndex(Protocol):
    kind: str
    last_sync: dict[str, Any]

    def sync(self, db) -> dict[str, Any]: ...

    def search(self, conn: sa.Connection, query_vec: np.ndarray, k: int, *,
               book_id: int | None = None) -> list[tuple[int, float]]: ...


def rerank(query_vec: np.ndarray, ids: np.ndarray, mat: np.ndarray, k: int) -> list[tuple[int, float]]:
    """Exact cosine of unit vectors (a dot product), best first, ties by id."""
    if not len(ids):
        return []
    scores = mat @ np.asarray(query_vec, dtype=np.float32)
    order = np.lexsort((ids, -scores))[:k]
    return [(int(ids[i]), float(scores[i])) for i in order]


def _exact(conn, query_vec, candidates, model: str, k: int, book_id: int | None) -> list[tuple[int, float]]:
    ids, mat = vector_store.exact_vectors(conn, candidates, model, book_id=book_id)
    return rerank(query_vec, ids, mat, k)


# --------------------------------------------------------------------------- files


@dataclasses.dataclass
class Snapshot:
    """One generation of the index: the graph, its chunks and the log id they reflect.

    Identical vectors (the same boilerplate page in many books, a book copied) share one graph
    node, a *slot*: HNSW loses its way among exact duplicates (recall@10 fell to 0.85 with nine
    copies of each vector). Per chunk: id, book id, slot and a 64-bit hash of the vector, kept
    sorted by slot so a slot's chunks are one ``searchsorted`` away.
    """

    model: str
    dim: int
    log_seq: int
    ids: np.ndarray
    books: np.ndarray
    slots: np.ndarray
    hashes: np.ndarray
    graph: Any  # usearch.index.Index, or None when empty

    @property
    def rows(self) -> int:
        return int(self.ids.shape[0])

    def sort(self) -> "Snapshot":
        order = np.lexsort((self.ids, self.slots))
        self.ids, self.books, self.slots, self.hashes = (a[order] for a in (self.ids, self.books, self.slots, self.hashes))
        return self

    def chunks_of(self, slots: np.ndarray, per_slot: int) -> list[np.ndarray]:
        """The chunk ids of each slot (at most ``per_slot`` of each), in the order given."""
        lo = np.searchsorted(self.slots, slots, "left")
        hi = np.minimum(np.searchsorted(self.slots, slots, "right"), lo + per_slot)
        return [self.ids[a:b] for a, b in zip(lo.tolist(), hi.tolist())]


def vector_hashes(mat: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's bytes (equal vectors, equal hashes)."""
    rows = np.ascontiguousarray(mat, dtype="<f4")
    return np.fromiter((int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8).digest(), "little") >> 1
                        for r in rows), dtype=np.int64, count=rows.shape[0])


def _crc_file(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            crc = zlib.crc32(block, crc)
    return crc


def _new_graph(dim: int):
    from usearch.index import Index  # lazy: the native library loads only when a graph is built or read

    return Index(ndim=dim, metric="ip", dtype=DTYPE, connectivity=CONNECTIVITY,
                 expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)


class Store:
    """The index folder: ``current.json`` names one generation (``<gen>.usearch`` + ``<gen>.ids``).

    Writers build a new generation and switch ``current.json`` by rename, so a reader sees the old
    generation or the new one; a process that memory-mapped the old files keeps them until it is done.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """One writer at a time (an advisory file lock); readers never wait."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def header(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.folder / "current.json").read_text())
        except (OSError, ValueError):
            return None

    def load(self, *, view: bool) -> Snapshot | None:
        """The current generation, checked (sizes, CRCs), or None when missing or damaged."""
        h = self.header()
        if h is None:
            return None
        try:
            n, gen = int(h["n"]), str(h["gen"])
            ids_path, graph_path = self.folder / f"{gen}.ids", self.folder / f"{gen}.usearch"
            raw = ids_path.read_bytes()
            if len(raw) != 32 * n or zlib.crc32(raw) != h["crc_ids"]:
                return None
            arr = np.frombuffer(raw, dtype="<i8")
            graph = None
            if n:
                if graph_path.stat().st_size != h["graph_size"] or _crc_file(graph_path) != h["crc_graph"]:
                    return None
                from usearch.index import Index  # lazy: the native library loads only when a graph is built or read

                graph = Index.restore(str(graph_path), view=view)
                if graph is None or graph.ndim != int(h["dim"]):
                    return None
                graph.expansion_search = EXPANSION_SEARCH
            return Snapshot(h["model"], int(h["dim"]), int(h["log_seq"]), arr[:n], arr[n:2 * n], arr[2 * n:3 * n],
                            arr[3 * n:], graph)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError):
            return None

    def save(self, s: Snapshot) -> None:
        gen = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        ids_path, graph_path = self.folder / f"{gen}.ids", self.folder / f"{gen}.usearch"
        raw = np.concatenate([s.ids, s.books, s.slots, s.hashes]).astype("<i8").tobytes()
        ids_path.write_bytes(raw)
        header = {"gen": gen, "model": s.model, "dim": s.dim, "log_seq": s.log_seq, "n": s.rows,
                  "crc_ids": zlib.crc32(raw), "graph_size": 0, "crc_graph": 0}
        if s.rows:
            s.graph.save(str(graph_path))
            header.update(graph_size=graph_path.stat().st_size, crc_graph=_crc_file(graph_path))
        tmp = self.folder / f"current.json.{gen}.tmp"
        tmp.write_text(json.dumps(header))
        os.replace(tmp, self.folder / "current.json")
        self._prune(keep=gen)

    def _prune(self, keep: str) -> None:
        for path in self.folder.iterdir():
            if path.suffix in (".ids", ".usearch", ".tmp") and not path.name.startswith(keep):
                with contextlib.suppress(OSError):
                    path.unlink()


# --------------------------------------------------------------------------- usearch HNSW in files


class HnswIndex:
    """An HNSW graph (usearch) in files, caught up from ``vector_log``; candidates re-ranked exactly."""

    kind = "usearch-hnsw"

    def __init__(self, folder: Path | None, model: str, dim: int, *, view: bool = True) -> None:
        self.store = Store(folder) if folder is not None else None
        self.model, self.dim, self.view = model, dim, view
        self._snap: Snapshot | None = None
        self._lock = threading.Lock()
        self.last_sync: dict[str, Any] = {}

    def sync(self, db) -> dict[str, Any]:
        """Bring the index up to the database; returns what was done (logged, and shown by the bench)."""
        with self._lock:
            with db.read() as conn:
                head = vector_store.log_head(conn)
            if self._usable(self._snap, head) and self._snap.log_seq == head:
                self.last_sync = {"action": "current", "rows": self._snap.rows}
                return self.last_sync
            on_disk = self.store.load(view=self.view) if self.store else None
            if self._usable(on_disk, head) and on_disk.log_seq == head:
                self._snap = on_disk
                self.last_sync = {"action": "loaded", "rows": on_disk.rows}
                return self.last_sync
            with self.store.writer() if self.store else contextlib.nullcontext():
                self.last_sync = self._update(db)
            return self.last_sync

    def _usable(self, s: Snapshot | None, head: int) -> bool:
        return s is not None and s.model == self.model and s.dim == self.dim and s.log_seq <= head

    def _update(self, db) -> dict[str, Any]:
        start = time.perf_counter()
        with db.read() as conn:
            head = vector_store.log_head(conn)  # read before the vectors: a book logged after is re-read next time
            base = self.store.load(view=False) if self.store else self._snap
            if base is not None and self.store and self.store.header() is None:
                base = None
            if not self._usable(base, head):
                if self.store and (self.store.folder / "current.json").exists():
                    log.warning("vector index in %s is damaged or stale: rebuilding it from the database",
                                self.store.folder)
                snap, action = self._build(conn, head), "rebuilt"
            elif base.log_seq == head:
                snap, action = base, "loaded"
            else:
                books = vector_store.changed_books(conn, base.log_seq, head)
                touched = np.isin(base.books, np.fromiter(books, np.int64, len(books)))
                if touched.sum() > REBUILD_FRACTION * max(1, base.rows):
                    snap, action = self._build(conn, head), "rebuilt"
                else:
                    snap, action = self._catch_up(conn, base, books, touched, head), f"caught up {len(books)} books"
        if self.store and action != "loaded":
            try:
                self.store.save(snap)
            except OSError as exc:  # a read-only folder: the index still works, in memory, for this process
                log.warning("cannot write the vector index in %s (%s): kept in memory only", self.store.folder, exc)
        self._snap = snap
        return {"action": action, "rows": snap.rows, "seconds": round(time.perf_counter() - start, 3)}

    def _build(self, conn, head: int) -> Snapshot:
        empty = np.empty(0, np.int64)
        return self._add(Snapshot(self.model, self.dim, head, empty, empty, empty, empty, None), conn, None)

    def _add(self, snap: Snapshot, conn, books: list[int] | None) -> Snapshot:
        """Add the books' vectors (all when None): a vector already in the graph joins its slot."""
        slot_of = dict(zip(snap.hashes.tolist(), snap.slots.tolist()))
        next_slot = int(snap.slots.max()) + 1 if snap.rows else 0
        parts = [(snap.ids, snap.books, snap.slots, snap.hashes)]
        for part_ids, part_books, mat in vector_store.stream_vectors(conn, self.model, self.dim, books):
            hashes = vector_hashes(mat)
            slots = np.empty(len(hashes), np.int64)
            new_rows, new_slots = [], []
            for row, h in enumerate(hashes.tolist()):
                slot = slot_of.get(h)
                if slot is None:
                    slot = slot_of[h] = next_slot
                    next_slot += 1
                    new_rows.append(row)
                    new_slots.append(slot)
                slots[row] = slot
            if new_rows:
                if snap.graph is None:
                    snap.graph = _new_graph(self.dim)
                snap.graph.add(np.array(new_slots, np.int64), mat[new_rows], threads=0)
            parts.append((part_ids, part_books, slots, hashes))
        snap.ids, snap.books, snap.slots, snap.hashes = (np.concatenate([p[i] for p in parts]) for i in range(4))
        return snap.sort()

    def _catch_up(self, conn, base: Snapshot, books: set[int], touched: np.ndarray, head: int) -> Snapshot:
        keep = ~touched
        orphans = np.setdiff1d(base.slots[touched], base.slots[keep])  # slots no remaining chunk uses
        if len(orphans):
            base.graph.remove(orphans)
        snap = Snapshot(self.model, self.dim, head, base.ids[keep], base.books[keep], base.slots[keep],
                        base.hashes[keep], base.graph)
        return self._add(snap, conn, sorted(books)) if books else snap

    def search(self, conn: sa.Connection, query_vec: np.ndarray, k: int, *,
               book_id: int | None = None) -> list[tuple[int, float]]:
        if book_id is not None:  # one book: exact over its own vectors, no graph
            ids, mat = vector_store.book_vectors(conn, book_id, self.model)
            return rerank(query_vec, ids, mat, k)
        snap = self._snap
        if snap is None or snap.graph is None or snap.rows == 0:
            return []
        found = snap.graph.search(np.asarray(query_vec, dtype=np.float32), min(max(CANDIDATES, 2 * k), len(snap.graph)))
        slots = np.asarray(found.keys, dtype=np.int64)
        groups = snap.chunks_of(slots, k)
        # one exact vector per slot (its copies score the same), then the slot's chunks in score order
        reps = [int(g[0]) for g in groups if len(g)]
        rep_ids, mat = vector_store.raw_vectors(conn, reps, self.model)
        scores = dict(zip(rep_ids.tolist(), (mat @ np.asarray(query_vec, dtype=np.float32)).tolist())) if len(rep_ids) else {}
        ranked = sorted((g for g in groups if len(g) and int(g[0]) in scores), key=lambda g: -scores[int(g[0])])
        out: list[tuple[int, float]] = []
        for g in ranked:
            out.extend((int(cid), scores[int(g[0])]) for cid in g)
            if len(out) >= 2 * k:
                break
        live = vector_store.searchable(conn, [cid for cid, _ in out])
        return [(cid, sc) for cid, sc in out if cid in live][:k]


# --------------------------------------------------------------------------- pgvector


class PgVectorIndex:
    """An HNSW index in PostgreSQL (pgvector), derived from ``chunks`` and caught up from ``vector_log``."""

    kind = "pgvector-hnsw"

    def __init__(self, model: str, dim: int, *, ef_search: int = EXPANSION_SEARCH) -> None:
        self.model, self.dim, self.ef_search = model, dim, ef_search
        self.last_sync: dict[str, Any] = {}

    def sync(self, db) -> dict[str, Any]:
        with db.read() as conn:
            head = vector_store.log_head(conn)
            state = vector_store.pgvector_state(conn)
        if state and state["model"] == self.model and state["dim"] == self.dim and state["log_seq"] == head:
            self.last_sync = {"action": "current"}
            return self.last_sync
        with db.write() as conn:
            vector_store.pgvector_lock(conn)
            state = vector_store.pgvector_state(conn)
            head = vector_store.log_head(conn)
            fresh = not state or state["model"] != self.model or state["dim"] != self.dim or state["log_seq"] > head
            if fresh:  # bulk copy first, then one HNSW build: far faster than growing the graph row by row
                vector_store.pgvector_create(conn, self.model, self.dim)
                rows = vector_store.pgvector_replace_books(conn, self.model, self.dim, None, head)
                vector_store.pgvector_build_graph(conn)
                self.last_sync = {"action": "rebuilt", "rows": rows}
            elif state["log_seq"] < head:
                books = sorted(vector_store.changed_books(conn, state["log_seq"], head))
                rows = vector_store.pgvector_replace_books(conn, self.model, self.dim, books, head)
                self.last_sync = {"action": f"caught up {len(books)} books", "rows": rows}
            else:
                self.last_sync = {"action": "current"}
        return self.last_sync

    def search(self, conn: sa.Connection, query_vec: np.ndarray, k: int, *,
               book_id: int | None = None) -> list[tuple[int, float]]:
        if book_id is not None:
            ids, mat = vector_store.book_vectors(conn, book_id, self.model)
            return rerank(query_vec, ids, mat, k)
        found = vector_store.pgvector_search(conn, query_vec, max(CANDIDATES, 2 * k), ef_search=self.ef_search)
        return _exact(conn, query_vec, [cid for cid, _ in found], self.model, k, None)


# --------------------------------------------------------------------------- choosing


def index_folder(db_url: str, data_dir: Path) -> Path | None:
    """Where the files live: beside a SQLite file; under data_dir for PostgreSQL; None for a memory database."""
    url = sa.engine.make_url(db_url)
    if url.get_backend_name() == "sqlite":
        path = url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        return Path(path).with_name(Path(path).name + ".vectors")
    key = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    return Path(data_dir) / "vector-index" / key


def open_index(db, settings, embedder, *, view: bool = True) -> VectorIndex:
    """The index for this database and embedder: pgvector's HNSW when the server has it, else usearch files."""
    choice = settings.vector_index
    if choice not in ("auto", "pgvector", "files"):
        raise errors.ConfigError(f"invalid value for setting vector_index: {choice!r} (auto, pgvector or files)")
    if db.is_postgres and choice in ("auto", "pgvector"):
        with db.read() as conn:
            has = vector_store.pgvector_available(conn)
        if has:
            return PgVectorIndex(embedder.name, embedder.dim)
        if choice == "pgvector":
            raise errors.ConfigError("vector_index = pgvector, but this PostgreSQL server has no `vector` extension",
                                     hint="install pgvector on the server, or set vector_index = auto")
    return HnswIndex(index_folder(settings.db_url, settings.data_dir), embedder.name, embedder.dim, view=view)
