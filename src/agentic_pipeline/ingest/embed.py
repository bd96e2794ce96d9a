"""The embedder port: turn text into unit vectors, and count tokens with the model's own tokenizer.

The pipeline stores one float32 vector per chunk and ranks them by cosine similarity, so every
embedder returns L2-normalised rows (cosine is then a dot product). The chunker needs the same
tokenizer the model uses, otherwise "at most N tokens" would mean nothing to the model.

Two embedders ship:

* ``wordllama-l2-supercat-256`` (the default): WordLlama's static token embeddings, 256-d, mean
  pooled. It is loaded straight from the files inside the installed ``wordllama`` wheel, never
  through ``WordLlama.load()``, which looks for the tokenizer in the wrong directory
  (``wordllama/tokenizer/`` instead of ``wordllama/tokenizers/``) and then tries the Hugging Face
  hub. Nothing here opens a socket; see docs/embedding.md.
* ``hashing``: a deterministic hashed bag of words for tests of other stages (a fake at the port).

Empty or whitespace-only text has no tokens and embeds to the zero vector (it cannot be normalised);
it then scores 0 against every query.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from agentic_pipeline.errors import ConfigError

DEFAULT_EMBEDDER = "wordllama-l2-supercat-256"

_BLOB_DTYPE = np.dtype("<f4")


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 rows and counts its own tokens."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return a float32 array of shape (len(texts), dim) with unit rows (zero rows for empty text)."""
        ...

    def tokenize(self, text: str) -> list[int]:
        """Return the model's token ids for ``text`` (no special tokens)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Return ``len(self.tokenize(text))``, possibly faster."""
        ...


# --------------------------------------------------------------------------- helpers


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Scale each row to unit length in place; zero rows stay zero (no NaN)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix


def to_blob(vec: np.ndarray) -> bytes:
    """Serialise one vector as little-endian float32 bytes, the database's storage format."""
    return np.ascontiguousarray(vec, dtype=_BLOB_DTYPE).reshape(-1).tobytes()


def from_blob(blob: bytes, dim: int) -> np.ndarray:
    """Read a vector written by ``to_blob``; a size mismatch means a different embedder wrote it."""
    if len(blob) != dim * _BLOB_DTYPE.itemsize:
        raise ConfigError(
            f"stored vector has {len(blob)} bytes, expected {dim} float32 values ({dim * 4} bytes)",
            hint="the embedder changed since these chunks were embedded; re-embed the library",
        )
    return np.frombuffer(blob, dtype=_BLOB_DTYPE).astype(np.float32)


# --------------------------------------------------------------------------- WordLlama


@contextlib.contextmanager
def _offline_env() -> Iterator[None]:
    """Force every Hugging Face code path offline while the model files are read."""
    keys = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def wordllama_dir() -> Path:
    """Locate the installed ``wordllama`` package without importing it.

    Importing ``wordllama`` calls ``logging.basicConfig(level=INFO)`` as a side effect; we only
    need its data files.
    """
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the wordllama package is not installed", hint="pip install wordllama==0.4.0.post1")
    return Path(next(iter(spec.submodule_search_locations)))


class WordLlamaEmbedder:
    """WordLlama l2_supercat 256-d static embeddings, mean pooled over the Llama-2 tokenizer.

    Loaded lazily on first use, once per instance, from the wheel's own files. Pooling is done
    without padding (one ``np.add.reduceat`` over the concatenated token vectors), which gives the
    same vectors as ``WordLlamaInference.embed(norm=True)`` while never materialising a
    (batch, longest, dim) tensor for a batch that mixes short and very long texts.
    """

    name = DEFAULT_EMBEDDER
    dim = 256
    config = "l2_supercat"

    def __init__(self, *, batch_tokens: int = 4096) -> None:
        #: upper bound on tokens pooled at once; bounds memory at batch_tokens * dim * 4 bytes
        self.batch_tokens = batch_tokens
        self._lock = threading.Lock()
        self._tokenizer = None
        self._matrix: np.ndarray | None = None

    # ---- loading

    def _paths(self) -> tuple[Path, Path]:
        root = wordllama_dir()
        weights = root / "weights" / f"{self.config}_{self.dim}.safetensors"
        tokenizer = root / "tokenizers" / f"{self.config}_tokenizer_config.json"
        for path in (weights, tokenizer):
            if not path.is_file():
                raise ConfigError(f"wordllama file missing: {path}", hint="reinstall wordllama==0.4.0.post1")
        return weights, tokenizer

    def _load_tokenizer(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer  # lazy: the model's libraries load with the model

            with self._lock, _offline_env():
                if self._tokenizer is None:
                    tok = Tokenizer.from_file(str(self._paths()[1]))
                    tok.no_padding()
                    tok.no_truncation()
                    self._tokenizer = tok
        return self._tokenizer

    def _load_matrix(self) -> np.ndarray:
        if self._matrix is None:
            from safetensors import safe_open  # lazy: the model's libraries load with the model

            with self._lock, _offline_env():
                if self._matrix is None:
                    with safe_open(str(self._paths()[0]), framework="np", device="cpu") as f:
                        self._matrix = np.ascontiguousarray(f.get_tensor("embedding.weight"), dtype=np.float32)
        return self._matrix

    def load(self) -> "WordLlamaEmbedder":
        """Load tokenizer and weights now (otherwise the first call does it); returns self."""
        self._load_tokenizer()
        self._load_matrix()
        return self

    # ---- the port

    def tokenize(self, text: str) -> list[int]:
        return self._load_tokenizer().encode(text, add_special_tokens=False).ids

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        """Token counts for many texts in one call to the (parallel) Rust tokenizer."""
        encs = self._load_tokenizer().encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encs]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        matrix = self._load_matrix()
        encs = self._load_tokenizer().encode_batch(texts, add_special_tokens=False)
        ids = [np.asarray(e.ids if t.strip() else (), dtype=np.int64) for e, t in zip(encs, texts)]
        for rows in _token_batches([len(i) for i in ids], self.batch_tokens):
            out[rows] = _mean_pool(matrix, [ids[r] for r in rows])
        return normalize_rows(out)


def _token_batches(lengths: Sequence[int], budget: int) -> Iterator[list[int]]:
    """Group row indexes of non-empty texts, in order, so each group holds about ``budget`` tokens."""
    batch: list[int] = []
    total = 0
    for row, n in enumerate(lengths):
        if n == 0:
            continue
        if batch and total + n > budget:
            yield batch
            batch, total = [], 0
        batch.append(row)
        total += n
    if batch:
        yield batch


def _mean_pool(matrix: np.ndarray, ids: list[np.ndarray]) -> np.ndarray:
    """Average the token vectors of each (non-empty) id list."""
    lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
    flat = np.clip(np.concatenate(ids), 0, matrix.shape[0] - 1)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    sums = np.add.reduceat(matrix[flat], starts, axis=0, dtype=np.float32)
    return sums / lengths[:, None].astype(np.float32)


# --------------------------------------------------------------------------- the fake


_WORDS = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """A deterministic fake: a signed, hashed bag of lower-cased words, L2-normalised.

    Texts sharing words have positive cosine similarity; texts sharing none score about 0.
    Uses blake2b, not ``hash()``, so vectors are identical across processes and runs.
    """

    name = "hashing"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def _hash(self, word: str) -> int:
        return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")

    def tokenize(self, text: str) -> list[int]:
        return [self._hash(w.lower()) % 1_000_003 for w in _WORDS.findall(text)]

    def count_tokens(self, text: str) -> int:
        return sum(1 for _ in _WORDS.finditer(text))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORDS.findall(text):
                h = self._hash(word.lower())
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        return normalize_rows(out)


# --------------------------------------------------------------------------- registry


_REGISTRY: dict[str, Callable[[], Embedder]] = {
    DEFAULT_EMBEDDER: WordLlamaEmbedder,
    HashingEmbedder.name: HashingEmbedder,
}


#: short names a setting may use; the instance always reports its full name (stored with vectors)
_ALIASES = {"wordllama": DEFAULT_EMBEDDER}


def embedder_names() -> list[str]:
    """Full names ``load_embedder`` accepts (besides the aliases in ``embedder_aliases``)."""
    return sorted(_REGISTRY)


def embedder_aliases() -> dict[str, str]:
    return dict(_ALIASES)


def load_embedder(name: str = DEFAULT_EMBEDDER) -> Embedder:
    """Return a new (lazily loading) embedder by name or alias; an unknown name is a ConfigError."""
    try:
        factory = _REGISTRY[_ALIASES.get(name, name)]
    except KeyError:
        valid = embedder_names() + sorted(_ALIASES)
        raise ConfigError(
            f"unknown embedder {name!r}; valid names: {', '.join(valid)}", name=name, valid=valid
        ) from None
    return factory()
