"""Benchmark: embedding throughput of WordLlamaEmbedder against raw WordLlama, load time, chunking speed.

Not a test. Builds 2,000 chunks of ~200 words from the sample books (windows over their extracted
text, shifted on each pass so no two are identical), embeds them with

* the baseline: ``wordllama.inference.WordLlamaInference.embed(norm=True)``, built from the same
  files (``WordLlama.load()`` itself cannot run offline), and
* ``agentic_pipeline.ingest.embed.WordLlamaEmbedder.embed``,

and reports chunks/s for both (best of ``REPEATS``), the overhead ratio (target <= 1.10), the
cold load time of the embedder in a fresh interpreter, and chunking throughput.

    .venv/bin/python bench/bench_embed.py [--quick]
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
BOOKS = REPO / "samples" / "books"
CHUNK_WORDS = 200
REPEATS = 3


def sample_texts() -> list[str]:
    """The extracted text of every readable sample book."""
    from agentic_pipeline.errors import BookError
    from agentic_pipeline.ingest.extract import extract

    texts = []
    for path in sorted(BOOKS.iterdir()):
        try:
            texts.append(extract(path).text)
        except BookError as exc:
            print(f"skip {path.name}: {exc}", file=sys.stderr)
    return texts


_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")  # as text_stats counts words: one per CJK character


def make_chunks(texts: list[str], n: int, words: int = CHUNK_WORDS) -> list[str]:
    """``n`` slices of ``words`` words of the original text; each pass starts 37 words later."""
    spans = [(text, [m.span() for m in _WORD.finditer(text)]) for text in texts]
    out: list[str] = []
    offset = 0
    while len(out) < n:
        for text, marks in spans:
            for start in range(offset, len(marks) - words, words):
                out.append(text[marks[start][0]:marks[start + words - 1][1]])
                if len(out) == n:
                    return out
        offset = (offset + 37) % words
    return out


def raw_wordllama():
    from safetensors import safe_open
    from tokenizers import Tokenizer
    from wordllama.inference import WordLlamaInference

    from agentic_pipeline.ingest import embed

    root = embed.wordllama_dir()
    with safe_open(str(root / "weights" / "l2_supercat_256.safetensors"), framework="np") as f:
        weights = f.get_tensor("embedding.weight")
    tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
    return WordLlamaInference(weights, tokenizer)


def best_rate(fn, items: list[str]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn(items)
        best = min(best, time.perf_counter() - t0)
    return len(items) / best


def cold_load_seconds() -> float:
    code = (
        "import time; t=time.perf_counter();"
        "from agentic_pipeline.ingest import embed; e=embed.WordLlamaEmbedder().load();"
        "e.embed(['warm up']); print(time.perf_counter()-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def chunking_rate(texts: list[str], embedder) -> tuple[float, int]:
    """Words per second through chunk_chapters with the real tokenizer (512 max, 64 overlap)."""
    from agentic_pipeline.ingest import chunking
    from agentic_pipeline.ingest.model import Chapter

    chapters = [Chapter(i, f"c{i}", t) for i, t in enumerate(texts)]
    words = sum(len(t.split()) for t in texts)
    t0 = time.perf_counter()
    chunks = chunking.chunk_chapters(chapters, max_tokens=512, overlap_tokens=64,
                                     count_tokens=embedder.count_tokens, keep_code_whole=True,
                                     keep_tables_whole=True)
    return words / (time.perf_counter() - t0), len(chunks)


def run(quick: bool = False) -> list[dict]:
    from agentic_pipeline.ingest import embed

    texts = sample_texts()
    chunks = make_chunks(texts, 200 if quick else 2000)
    raw = raw_wordllama()
    ours = embed.WordLlamaEmbedder().load()
    raw_rate = best_rate(lambda xs: raw.embed(xs, norm=True), chunks)
    our_rate = best_rate(ours.embed, chunks)
    load = cold_load_seconds()
    chunk_rate, n_chunks = chunking_rate(texts, ours)
    return [
        {"name": "raw WordLlama.embed", "value": round(raw_rate), "unit": "chunks/s",
         "note": f"{len(chunks)} chunks of {CHUNK_WORDS} words, best of {REPEATS}"},
        {"name": "WordLlamaEmbedder.embed", "value": round(our_rate), "unit": "chunks/s",
         "baseline": round(raw_rate), "ratio": round(raw_rate / our_rate, 3),
         "note": "ratio = our time / raw time; target <= 1.10"},
        {"name": "cold load (import + weights + tokenizer + first embed)", "value": round(load, 3), "unit": "s"},
        {"name": "chunk_chapters, all samples", "value": round(chunk_rate), "unit": "words/s",
         "note": f"{n_chunks} chunks of <= 512 tokens, overlap 64"},
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        extra = "".join(f"  {k}={row[k]}" for k in ("baseline", "ratio", "note") if k in row)
        print(f"{row['name']:<58} {row['value']:>10} {row['unit']}{extra}")
