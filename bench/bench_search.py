"""Benchmark: search at 10k, 100k and 1M chunks on SQLite and PostgreSQL, quality on the gold set.

Not a test. Real corpus books (../shared/corpus, else samples/books) are extracted, chunked (512/64)
and embedded once (cached under the temp dir); a library is seeded with them through the write path
(``library_store``: grams, vector log), then grown by copying its books in SQL (pipelines, books,
chapters, chunks with their vectors and a vector_log row per copy): 10k -> 100k -> 1M. At each size:

* warm query p50 / p95 through the Python API (``library.search``), one App kept open;
* the CLI ``search`` as a cold process (median of 3), and its peak memory (max RSS);
* recall@10 of the vector index against exact search over all vectors (tie-aware: a result counts
  when its exact score reaches the exact 10th best; copied books make exact ties);
* index catch-up rate (the rows the growth added, read from vector_log) and full build rate;
* nonsense queries: none may return a hit.

Quality: the gold set (tests/ingest/gold) through the real ``library.search`` over the sample books
at 512 tokens, recall@5 and MRR against bench_retrieval's recorded hybrid (0.964 / 0.875).

    .venv/bin/python -m bench.run search            # both engines, 10k / 100k / 1M
    .venv/bin/python bench/bench_search.py --engines sqlite --sizes 10000,100000
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("AGENTIC_PIPELINE_CORPUS") or REPO.parent / "shared" / "corpus")
SAMPLES = REPO / "samples" / "books"
CACHE = Path(tempfile.gettempdir()) / "agentic-bench-search"
SIZES = (10_000, 100_000, 1_000_000)
QUERIES = [
    "whale ship captain harpoon", "Natasha dances at the ball", "linear regression with lm",
    "the", "love and death", "kernel module character device", "April is the cruellest month",
    "matrix multiplication transpose", "how to install packages", "Romeo Juliet balcony",
    "吾輩は猫である", "the thunder speaks",
]
NONSENSE = ["zzzxqv", "Tweedledum", "qwxzv plorkt", "asdfghjkl", "xylophonic brumblewick"]
GOLD_BASELINE = (0.964, 0.875)  # bench_retrieval hybrid at 512 tokens, recorded in docs/embedding.md


# --------------------------------------------------------------------------- seed


def seed_books(folder: Path) -> list[dict]:
    """Every readable book of ``folder``: title, chapters and chunks (text, vector), cached by content."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".epub", ".pdf", ".txt", ".md", ".html"))
    key = hashlib.sha256("".join(f"{p.name}:{p.stat().st_size}" for p in files).encode()).hexdigest()[:12]
    cached = CACHE / f"seed-{folder.name}-{key}.pkl"
    if cached.exists():
        return pickle.loads(cached.read_bytes())
    from agentic_pipeline.errors import BookError
    from agentic_pipeline.ingest import chunking, embed, extract

    emb = embed.WordLlamaEmbedder().load()
    out = []
    for path in files:
        try:
            book = extract.extract(path)
        except BookError as exc:
            print(f"skip {path.name}: {exc}", file=sys.stderr)
            continue
        chunks = chunking.chunk_chapters(book.chapters, max_tokens=512, overlap_tokens=64,
                                         count_tokens=emb.count_tokens, keep_code_whole=True, keep_tables_whole=True)
        texts = [c.text for c in chunks]
        vecs = emb.embed(texts) if texts else np.empty((0, emb.dim), np.float32)
        out.append({"stem": path.stem, "title": book.metadata.title or path.stem, "language": book.metadata.language,
                    "chapters": [(c.index, c.title, c.text, c.word_count) for c in book.chapters],
                    "chunks": [(c.chapter_index, c.text, emb.count_tokens(c.text)) for c in chunks],
                    "vectors": np.asarray(vecs, dtype=np.float32), "model": emb.name, "dim": emb.dim})
        print(f"  seed {path.name}: {len(texts)} chunks", file=sys.stderr, flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(pickle.dumps(out))
    return out


def load_seed(app, books: list[dict]) -> dict[int, str]:
    """Write the seed books as COMPLETE pipelines through library_store; returns book id -> file stem."""
    import sqlalchemy as sa

    from agentic_pipeline.db import library_store
    from agentic_pipeline.db.schema import processing_pipelines as pp
    from agentic_pipeline.ingest import embed

    now = app.clock.now()
    stems = {}
    with app.db.write() as conn:
        for b in books:
            pid = conn.execute(pp.insert().values(
                source_path=f"/library/{b['stem']}", state="complete", priority=5, base_priority=5, created_at=now,
                updated_at=now, state_entered_at=now, queued_at=now, completed_at=now, title=b["title"])
                .returning(pp.c.id)).scalar_one()
            book_id = library_store.replace_book(
                conn, pipeline_id=pid, book={"content_hash": hashlib.sha256(b["stem"].encode()).hexdigest(),
                                             "title": b["title"], "language": b["language"],
                                             "source_path": f"/library/{b['stem']}"},
                chapter_rows=[{"chapter_index": i, "title": t, "text": x, "word_count": w} for i, t, x, w in b["chapters"]],
                chunk_rows=[{"chapter_index": ci, "ordinal": n, "position": n, "text": t, "token_count": tc}
                            for n, (ci, t, tc) in enumerate(b["chunks"])], now=now)
            conn.execute(sa.update(pp).where(pp.c.id == pid).values(book_id=book_id))
            ids = [cid for cid, _ in library_store.chunks_without_vectors(conn, book_id, b["model"], limit=10 ** 7)]
            library_store.set_embeddings(conn, [(cid, embed.to_blob(v)) for cid, v in zip(ids, b["vectors"])],
                                         model=b["model"], dim=b["dim"])
            stems[book_id] = b["stem"]
    return stems


# --------------------------------------------------------------------------- growing by SQL copies


def _columns(conn, table: str) -> list[str]:
    import sqlalchemy as sa

    return [c["name"] for c in sa.inspect(conn).get_columns(table) if c["name"] != "tsv"]  # tsv is generated


#: the seed's highest id per table, set by remember_seed: copy k shifts every id by k times it
_SEED: dict[str, int] = {}
_SHIFT = {"processing_pipelines": {"id": "processing_pipelines", "book_id": "books", "duplicate_of": "processing_pipelines"},
          "books": {"id": "books", "pipeline_id": "processing_pipelines"},
          "chapters": {"id": "chapters", "book_id": "books"},
          "chunks": {"id": "chunks", "book_id": "books", "chapter_id": "chapters"}}


def remember_seed(app) -> None:
    import sqlalchemy as sa

    with app.db.read() as conn:
        for t in _SHIFT:
            _SEED[t] = conn.execute(sa.text(f"SELECT max(id) FROM {t}")).scalar()


def grow(app, target: int) -> int:
    """Copy the seed books in SQL until the library holds >= ``target`` chunks; returns the chunk count."""
    import sqlalchemy as sa

    with app.db.read() as conn:
        seed_chunks = conn.execute(sa.text(f"SELECT count(*) FROM chunks WHERE id <= {_SEED['chunks']}")).scalar()
        have = conn.execute(sa.text("SELECT count(*) FROM chunks")).scalar()
        cols = {t: _columns(conn, t) for t in _SHIFT}
    for k in range(have // seed_chunks, math.ceil(target / seed_chunks)):
        with app.db.write() as conn:
            for table, shift in _SHIFT.items():
                exprs = [f"{c} + {k * _SEED[shift[c]]}" if c in shift else c for c in cols[table]]
                conn.execute(sa.text(f"INSERT INTO {table} ({', '.join(cols[table])}) SELECT {', '.join(exprs)} "
                                     f"FROM {table} WHERE id <= {_SEED[table]}"))
            conn.execute(sa.text(f"INSERT INTO vector_log (book_id, action) SELECT id + {k * _SEED['books']}, 'add' "
                                 f"FROM books WHERE id <= {_SEED['books']}"))
        print(f"  copy {k}: {(k + 1) * seed_chunks:,} chunks", file=sys.stderr, flush=True)
    if app.db.is_postgres:
        with app.db.write() as conn:
            for table in _SHIFT:
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
        with app.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("ANALYZE")
    with app.db.read() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM chunks")).scalar()


# --------------------------------------------------------------------------- measuring


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def warm_queries(app, queries: list[str], rounds: int = 3) -> list[float]:
    from agentic_pipeline.library import search

    search.search(app, queries[0])  # loads the embedder and the index once, as a long-running process does
    times = []
    for _ in range(rounds):
        for q in queries:
            t = time.perf_counter()
            search.search(app, q)
            times.append((time.perf_counter() - t) * 1000)
    return times


def cli_cold(url: str, query: str | None, data_dir: Path, runs: int = 3) -> tuple[float, float]:
    """(median seconds, max RSS MB) of ``agentic-pipeline search`` (``health`` without a query) in a fresh process."""
    exe = str(Path(sys.executable).parent / "agentic-pipeline")
    env = {**os.environ, "AGENTIC_PIPELINE_DATA_DIR": str(data_dir)}
    times, rss = [], 0.0
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t = time.perf_counter()
        args = ["search", query, "--json"] if query else ["health", "--json"]
        out = subprocess.run([exe, "--db", url, *args], capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        rss = max(rss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, before / 1024)
    return statistics.median(times), rss


def index_recall(app, books: list[dict], n_snippets: int = 40, seed: int = 11) -> float:
    """Tie-aware recall@10 of the index against exact search over every vector, for queries people type.

    The queries: QUERIES plus eight-word snippets of random seed chunks (a remembered sentence).
    """
    import random

    from agentic_pipeline.db import vector_store

    index = app.vector_index
    index.sync(app.db)
    with app.db.read() as conn:
        parts = list(vector_store.stream_vectors(conn, app.embedder.name, app.embedder.dim))
    mat = np.concatenate([p[2] for p in parts])
    rng = random.Random(seed)
    texts = [t for b in books for _, t, _ in b["chunks"]]
    snippets = []
    while len(snippets) < n_snippets:
        words = texts[rng.randrange(len(texts))].split()
        if len(words) > 12:
            start = rng.randrange(len(words) - 8)
            snippets.append(" ".join(words[start:start + 8]))
    hits = total = 0
    with app.db.read() as conn:
        for q in app.embedder.embed(QUERIES + snippets):
            exact = mat @ q
            kth = np.partition(exact, -10)[-10]
            got = index.search(conn, q, 10)
            hits += sum(score >= kth - 1e-5 for _, score in got)
            total += 10
    del mat
    return hits / total


def build_rate(app) -> tuple[int, float]:
    """(rows, seconds) of a full rebuild of the index from the database (the derived files removed first)."""
    from agentic_pipeline.library import vector_index

    folder = vector_index.index_folder(app.settings.db_url, app.settings.data_dir)
    index = app.vector_index
    if index.kind == "usearch-hnsw" and folder is not None:
        (folder / "current.json").unlink(missing_ok=True)
        index._snap = None
    elif index.kind == "pgvector-hnsw":
        with app.db.write() as conn:
            from agentic_pipeline.db import vector_store

            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {vector_store.PGV_STATE}")
    t = time.perf_counter()
    done = index.sync(app.db)
    return done.get("rows", 0), time.perf_counter() - t


def nonsense_hits(app) -> int:
    from agentic_pipeline.library import search

    return sum(len(search.search(app, q)) for q in NONSENSE)


def gold(engine_url_factory) -> list[dict]:
    """recall@5 / MRR of the gold queries through library.search over the sample books at 512 tokens."""
    sys.path.insert(0, str(REPO))
    from bench import bench_retrieval

    books = seed_books(SAMPLES)
    queries = bench_retrieval.load_gold()
    rows = []
    for engine, url_cm in engine_url_factory():
        with url_cm as (app, _url):
            if app is None:
                continue
            stems = load_seed(app, books)
            from agentic_pipeline.library import search

            firsts = []
            for q in queries:
                results = search.search(app, q.query, limit=100)
                first = next((i for i, r in enumerate(results, 1) if stems.get(r["library_book_id"]) == q.book
                              and q.chapter.lower() in (r["chapter_title"] or "").lower()
                              and q.index in (None, r["chapter_index"])), 0)
                firsts.append(first)
            recall = sum(1 for f in firsts if 0 < f <= 5) / len(queries)
            mrr = sum(1 / f for f in firsts if f) / len(queries)
            note = f"{len(queries)} gold queries, sample books at 512 tokens; baseline: bench_retrieval hybrid (docs/embedding.md)"
            rows.append(_row(f"gold recall@5 {engine}", recall, "", GOLD_BASELINE[0], note))
            rows.append(_row(f"gold MRR {engine}", mrr, "", GOLD_BASELINE[1], note))
            rows.append(_row(f"nonsense queries with hits, samples {engine}", nonsense_hits(app), "queries", None,
                             ", ".join(NONSENSE)))
    return rows


def _row(name: str, value, unit: str, baseline, note: str) -> dict:
    row = {"name": name, "value": round(value, 3) if isinstance(value, float) else value, "unit": unit, "note": note}
    if baseline:
        row["baseline"] = baseline
        row["ratio"] = round(value / baseline, 3)
    return row


# --------------------------------------------------------------------------- engines


def engines(names: tuple[str, ...]):
    """(engine, context manager yielding (App, url)) for each engine asked for and available."""
    def factory():
        for name in names:
            yield name, _open(name)
    return factory


@contextlib.contextmanager
def _open(engine: str):
    from agentic_pipeline.db import migrations
    from agentic_pipeline.db.engine import Database

    def open_app(url: str, data_dir: Path):
        from agentic_pipeline import config
        from agentic_pipeline.app import App

        return App.open(config.load(overrides={"db": url, "data_dir": data_dir}))

    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        if engine == "sqlite":
            url = f"sqlite:///{tmp}/library.db"
            db = Database(url)
            migrations.upgrade(db)
            db.dispose()
            app = open_app(url, Path(tmp) / "data")
            try:
                yield app, url
            finally:
                app.close()
            return
        from bench._pg import throwaway_database

        with throwaway_database("search") as pgdb:
            if not pgdb:
                print(f"postgresql skipped: {pgdb.reason}", file=sys.stderr)
                yield None, None
                return
            db = Database(pgdb.sqlalchemy_url)
            migrations.upgrade(db)
            db.dispose()
            app = open_app(pgdb.sqlalchemy_url, Path(tmp) / "data")
            try:
                yield app, pgdb.sqlalchemy_url
            finally:
                app.close()


def scale(names: tuple[str, ...], sizes: tuple[int, ...]) -> list[dict]:
    books = seed_books(CORPUS if CORPUS.is_dir() else SAMPLES)
    rows = []
    for engine, cm in engines(names)():
        with cm as (app, url):
            if app is None:
                continue
            load_seed(app, books)
            remember_seed(app)
            first = None
            for size in sizes:
                t = time.perf_counter()
                n = grow(app, size)
                grow_s = time.perf_counter() - t
                label = f"{engine} {n:,} chunks"
                sync = app.vector_index.sync(app.db)  # catch-up with the rows the growth logged
                if "caught up" in sync["action"] or sync["action"] == "rebuilt":
                    rows.append(_row(f"index {sync['action'].split(' ')[0]} rate, {label}",
                                     sync["rows"] / max(sync.get("seconds", 0) or 1e-9, 1e-9), "rows/s", None,
                                     f"{sync['action']} in {sync.get('seconds')} s ({app.vector_index.kind})"))
                times = warm_queries(app, QUERIES)
                p50, p95 = _pct(times, 50), _pct(times, 95)
                first = first or p50
                rows.append(_row(f"warm query p50, {label}", p50, "ms", first, f"{len(times)} queries, Python API; "
                                 f"baseline: the first size; library grown by SQL copies in {grow_s:.0f} s"))
                rows.append(_row(f"warm query p95, {label}", p95, "ms", None, ""))
                cold, rss = cli_cold(url, "whale ship captain harpoon", app.settings.data_dir)
                base, _ = cli_cold(url, None, app.settings.data_dir)
                rows.append(_row(f"CLI search cold, {label}", cold, "s", base, "fresh process, median of 3; baseline: "
                                 "`health --json` cold on the same database (start-up and imports on this machine now)"))
                rows.append(_row(f"CLI search peak memory, {label}", rss, "MB", None, "max RSS of the CLI process"))
                rows.append(_row(f"index recall@10 vs exact, {label}", index_recall(app, books), "", None,
                                 f"{app.vector_index.kind}, tie-aware (copied books tie exactly)"))
                built, secs = build_rate(app)
                rows.append(_row(f"index full build rate, {label}", built / max(secs, 1e-9), "rows/s", None,
                                 f"{built:,} rows in {secs:.1f} s"))
                rows.append(_row(f"nonsense queries with hits, {label}", nonsense_hits(app), "queries", None,
                                 ", ".join(NONSENSE)))
                for r in rows[-8:]:
                    print(f"  {r['name']}: {r['value']} {r['unit']}", file=sys.stderr, flush=True)
    return rows


def hnsw_distinct(books: list[dict], n: int, seed: int = 5) -> list[dict]:
    """The graph alone over ``n`` *distinct* vectors: recall@10 (candidates re-ranked exactly) and build rate.

    The SQL-grown libraries are copies, which the index stores once each (identical vectors share a
    node), so they do not show how HNSW behaves on a million different chunks. Here each vector is
    a seed chunk's vector plus Gaussian noise (cosine ~0.9 to its origin), normalised: a million
    distinct points with the seed's shape. No database: the index's own parameters and re-rank.
    """
    from agentic_pipeline.ingest import embed
    from agentic_pipeline.library import vector_index

    base = np.concatenate([b["vectors"] for b in books]).astype(np.float32)
    rng = np.random.default_rng(seed)
    mat = base[rng.integers(0, len(base), n)]
    mat += rng.standard_normal(mat.shape, dtype=np.float32) * np.float32(0.03)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    graph = vector_index._new_graph(mat.shape[1])
    t = time.perf_counter()
    for start in range(0, n, 50_000):
        graph.add(np.arange(start, min(n, start + 50_000)), mat[start:start + 50_000], threads=0)
    build = time.perf_counter() - t
    emb = embed.WordLlamaEmbedder().load()
    queries = emb.embed(QUERIES + [" ".join(t.split()[5:13]) for b in books[:8] for _, t, _ in b["chunks"][3:40:9]])
    hits = total = 0
    search_ms = []
    for q in queries:
        exact = mat @ q
        kth = np.partition(exact, -10)[-10]
        t = time.perf_counter()
        keys = np.asarray(graph.search(q, vector_index.CANDIDATES).keys, dtype=np.int64)
        search_ms.append((time.perf_counter() - t) * 1000)
        top = np.sort(exact[keys])[-10:]
        hits += int((top >= kth - 1e-5).sum())
        total += 10
    note = f"{n:,} distinct vectors (seed + noise), graph top {vector_index.CANDIDATES} re-ranked exactly, {len(queries)} typed queries"
    return [_row(f"HNSW recall@10 vs exact, {n:,} distinct", hits / total, "", None, note),
            _row(f"HNSW graph search p50, {n:,} distinct", _pct(search_ms, 50), "ms", None, f"usearch, {vector_index.DTYPE}, M={vector_index.CONNECTIVITY}, ef={vector_index.EXPANSION_SEARCH}"),
            _row(f"HNSW build rate, {n:,} distinct", n / build, "rows/s", None, f"{build:.0f} s, all cores")]


def run(quick: bool = False, engines_: tuple[str, ...] = ("sqlite", "postgresql"),
        sizes: tuple[int, ...] | None = None) -> list[dict]:
    sys.path.insert(0, str(REPO))
    load = os.getloadavg()[0]
    rows = gold(engines(engines_))
    rows += scale(engines_, sizes or ((10_000, 100_000) if quick else SIZES))
    rows += hnsw_distinct(seed_books(CORPUS if CORPUS.is_dir() else SAMPLES), 100_000 if quick else 1_000_000)
    rows.append(_row("load average at start", load, "", None, f"{os.cpu_count()} cores shared with other work"))
    return rows


if __name__ == "__main__":
    args = sys.argv[1:]
    names = tuple(args[args.index("--engines") + 1].split(",")) if "--engines" in args else ("sqlite", "postgresql")
    sizes = tuple(int(s) for s in args[args.index("--sizes") + 1].split(",")) if "--sizes" in args else None
    for row in run(quick="--quick" in args, engines_=names, sizes=sizes):
        extra = "".join(f"  {k}={row[k]}" for k in ("baseline", "ratio", "note") if k in row)
        print(f"{row['name']:<50} {row['value']:>10} {row['unit']}{extra}")
