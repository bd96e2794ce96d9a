"""Benchmark: the floor under EPUB extraction, i.e. what XHTML-to-text with paragraph breaks costs.

Not a test. The EPUB overhead in ``bench_extract`` compares ``extract`` with bare lexbor
``body.text()``, which returns the text nodes glued together: no paragraph breaks, whitespace
as in the source, no word count. This benchmark asks whether any way of getting *laid-out* text
(paragraphs separated, whitespace collapsed, words counted) comes within 10 % of that bare call,
on the same spine documents (../shared/corpus EPUBs when present, else samples/books), in
process CPU time, best of ``REPEATS``:

* ``bare``: ``LexborHTMLParser(doc).body.text()`` (the baseline; the ratio of every row is to it);
* ``ours``: ``ingest.extract.html.to_text`` (block marks, lexbor, one whitespace pass, word count);
* ``split_join``: lexbor text with the same block marks, then the obvious Python layout
  (split on paragraph marks, ``" ".join(p.split())``, ``len`` of the words);
* native converters, each only if installed (they are not dependencies; install them into the
  venv to include them): Resiliparse ``extract_plain_text`` (C++ over lexbor),
  ``html_to_markdown.convert`` (Rust), ``html2text_rs.text_plain`` (Rust).

    .venv/bin/python -m bench.run html_text [--quick]
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import time
import zipfile

from selectolax.lexbor import LexborHTMLParser

from agentic_pipeline.ingest.extract import html

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
SAMPLES = ROOT / "samples" / "books"
REPEATS = 5


def documents(quick: bool) -> list[bytes]:
    """Every (X)HTML entry of every EPUB (quick: the smaller books only)."""
    root = CORPUS if CORPUS.is_dir() else SAMPLES
    docs = []
    for path in sorted(root.glob("*.epub")):
        if quick and path.stat().st_size > 2_000_000:
            continue
        with zipfile.ZipFile(path) as archive:
            docs += [archive.read(n) for n in archive.namelist() if n.lower().endswith((".xhtml", ".html", ".htm"))]
    return docs


def bare(docs: list[bytes]) -> None:
    for d in docs:
        body = LexborHTMLParser(d).body
        if body is not None:
            body.text(deep=True, separator="", strip=False)


def ours(docs: list[bytes]) -> None:
    for d in docs:
        html.to_text(d)


def split_join(docs: list[bytes]) -> None:
    for d in docs:
        body = LexborHTMLParser(html._BLOCK_END.sub(html._BLOCK_MARK, d)).body
        if body is None:
            continue
        words, paras = 0, []
        for para in body.text(deep=True, separator="", strip=False).split(html._PARA):
            w = para.split()
            if w:
                words += len(w)
                paras.append(" ".join(w))
        "\n\n".join(paras)


def _natives() -> dict[str, object]:
    found: dict[str, object] = {}
    if importlib.util.find_spec("resiliparse") is not None:
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.html import HTMLTree

        found["resiliparse"] = lambda docs: [extract_plain_text(HTMLTree.parse_from_bytes(d, "utf-8"),
                                                                preserve_formatting=True, main_content=False)
                                             for d in docs]
    if importlib.util.find_spec("html_to_markdown") is not None:
        import html_to_markdown

        found["html_to_markdown"] = lambda docs: [html_to_markdown.convert(d.decode("utf-8", "replace")) for d in docs]
    if importlib.util.find_spec("html2text_rs") is not None:
        import html2text_rs

        found["html2text_rs"] = lambda docs: [html2text_rs.text_plain(d.decode("utf-8", "replace"), 1_000_000)
                                              for d in docs]
    return found


def best(fn, docs, repeats: int) -> float:
    fastest = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        fn(docs)
        fastest = min(fastest, time.process_time() - started)
    return fastest


def run(quick: bool = False) -> list[dict]:
    docs = documents(quick)
    repeats = 2 if quick else REPEATS
    size = sum(map(len, docs)) / 1e6
    floor = best(bare, docs, repeats)
    rows = [{"name": "bare", "value": round(floor * 1000, 1), "unit": "ms CPU", "baseline": round(floor * 1000, 1),
             "ratio": 1.0, "note": f"{len(docs)} documents, {size:.1f} MB; lexbor body.text(), no layout"}]
    candidates = {"ours": ours, "split_join": split_join, **_natives()}
    notes = {"ours": "html.to_text: paragraphs, collapsed whitespace, word count, first heading",
             "split_join": "same block marks, then split/join in Python"}
    for name, fn in candidates.items():
        took = best(fn, docs, repeats)
        rows.append({"name": name, "value": round(took * 1000, 1), "unit": "ms CPU", "baseline": round(floor * 1000, 1),
                     "ratio": round(took / floor, 2), "note": notes.get(name, "native converter (installed by hand)")})
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
