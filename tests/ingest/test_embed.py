"""The embedder port: the real WordLlama model (offline), the hashing fake, the registry and blobs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from agentic_pipeline.errors import ConfigError
from agentic_pipeline.ingest import embed

PASSAGES = [
    "To install a package from CRAN, call install.packages() with the package name; "
    "library() then attaches it to the search path.",
    "Romeo climbs the orchard wall and sees Juliet at her window above; she speaks of his name "
    "and wishes he were not a Montague.",
    "The finite state machine moves from idle to running when the driver receives an interrupt, "
    "and returns to idle once the buffer is drained.",
    "April is the cruellest month, breeding lilacs out of the dead land, mixing memory and desire.",
]


@pytest.fixture(scope="module")
def wordllama() -> embed.WordLlamaEmbedder:
    return embed.WordLlamaEmbedder().load()


# --------------------------------------------------------------------------- real model


def test_wordllama_vectors_are_float32_unit_rows(wordllama):
    vecs = wordllama.embed(PASSAGES)
    assert vecs.shape == (len(PASSAGES), wordllama.dim) == (4, 256)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_wordllama_is_deterministic_across_two_loads(wordllama):
    again = embed.load_embedder(embed.DEFAULT_EMBEDDER)
    assert again is not wordllama
    np.testing.assert_array_equal(wordllama.embed(PASSAGES), again.embed(PASSAGES))


def test_related_query_ranks_its_passage_first(wordllama):
    queries = {
        "how do I install an R package": 0,
        "Juliet speaks to Romeo from her window": 1,
        "state transitions in a device driver": 2,
    }
    doc = wordllama.embed(PASSAGES)
    for query, expected in queries.items():
        scores = doc @ wordllama.embed([query])[0]
        assert int(np.argmax(scores)) == expected, (query, scores)


def test_wordllama_matches_the_library_own_pooling(wordllama):
    """Our padding-free pooling gives the vectors WordLlamaInference.embed(norm=True) gives."""
    from safetensors import safe_open
    from tokenizers import Tokenizer
    from wordllama.inference import WordLlamaInference

    root = embed.wordllama_dir()
    with safe_open(str(root / "weights" / "l2_supercat_256.safetensors"), framework="np") as f:
        weights = f.get_tensor("embedding.weight")
    tok = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
    raw = WordLlamaInference(weights, tok).embed(PASSAGES + ["short"], norm=True)
    np.testing.assert_allclose(wordllama.embed(PASSAGES + ["short"]), raw, atol=1e-6)


def test_empty_text_embeds_to_zero_and_small_batches_agree(wordllama):
    small = embed.WordLlamaEmbedder(batch_tokens=8)
    texts = ["", "   ", *PASSAGES]
    vecs = small.embed(texts)
    assert not np.isnan(vecs).any()
    assert np.all(vecs[:2] == 0)
    np.testing.assert_allclose(vecs[2:], wordllama.embed(PASSAGES), atol=1e-6)
    assert wordllama.embed([]).shape == (0, 256)


def test_tokenizer_is_the_models_own(wordllama):
    text = PASSAGES[0]
    ids = wordllama.tokenize(text)
    assert wordllama.count_tokens(text) == len(ids) > len(text.split())
    assert wordllama.count_tokens_batch([text, ""]) == [len(ids), 0]
    assert wordllama.count_tokens("") == 0
    assert max(ids) < 32000


OFFLINE_SCRIPT = textwrap.dedent(
    """
    import socket, sys
    def refuse(*args, **kwargs):
        raise OSError("network used during offline load")
    socket.socket.connect = refuse
    socket.create_connection = refuse
    from agentic_pipeline.ingest import embed
    e = embed.load_embedder("wordllama-l2-supercat-256")
    v = e.embed(["offline embedding works"])
    assert v.shape == (1, 256), v.shape
    assert "wordllama" not in sys.modules, "importing wordllama has side effects we avoid"
    print("ok", e.count_tokens("offline embedding works"))
    """
)


def test_loads_offline_with_no_network_and_no_home_cache(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    proc = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok ")
    assert not any((tmp_path).iterdir()), "the loader wrote into HOME / caches"


# --------------------------------------------------------------------------- the fake


def test_hashing_fake_is_deterministic_and_normalised():
    a, b = embed.HashingEmbedder(), embed.load_embedder("hashing")
    va, vb = a.embed(PASSAGES), b.embed(PASSAGES)
    np.testing.assert_array_equal(va, vb)
    assert va.dtype == np.float32 and va.shape == (4, 256)
    np.testing.assert_allclose(np.linalg.norm(va, axis=1), 1.0, atol=1e-5)
    assert np.all(a.embed([""]) == 0)


def test_hashing_fake_is_deterministic_across_processes():
    script = "from agentic_pipeline.ingest import embed; print(embed.HashingEmbedder().embed(['a b c'])[0][:8].tolist())"
    outs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1


def test_hashing_fake_ranks_related_text_above_unrelated():
    fake = embed.HashingEmbedder()
    doc = fake.embed(PASSAGES)
    scores = doc @ fake.embed(["Juliet at the window speaks of Romeo's name"])[0]
    assert int(np.argmax(scores)) == 1
    assert scores[1] > 0.3 > max(scores[0], scores[2], scores[3])


def test_hashing_fake_counts_words_as_tokens():
    fake = embed.HashingEmbedder()
    assert fake.count_tokens("one two, three!") == 3 == len(fake.tokenize("one two, three!"))
    assert isinstance(fake, embed.Embedder)


# --------------------------------------------------------------------------- registry and blobs


def test_unknown_embedder_names_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        embed.load_embedder("minilm-typo")
    message = str(info.value)
    assert "minilm-typo" in message
    for name in [*embed.embedder_names(), *embed.embedder_aliases()]:
        assert name in message
    assert "wordllama" in info.value.valid


def test_short_alias_loads_the_full_name():
    assert embed.load_embedder("wordllama").name == embed.DEFAULT_EMBEDDER == "wordllama-l2-supercat-256"


def test_registry_instances_satisfy_the_protocol():
    for name in embed.embedder_names():
        instance = embed.load_embedder(name)
        assert isinstance(instance, embed.Embedder)
        assert instance.name == name


def test_blob_round_trip_is_little_endian_float32():
    vec = np.array([1.0, -2.5, 0.125], dtype=np.float64)
    blob = embed.to_blob(vec)
    assert blob == np.array([1.0, -2.5, 0.125], dtype="<f4").tobytes()
    back = embed.from_blob(blob, 3)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, vec.astype(np.float32))
    back[0] = 9.0  # writable copy, not a view of the bytes


def test_blob_of_the_wrong_size_is_a_config_error():
    with pytest.raises(ConfigError, match="re-embed"):
        embed.from_blob(b"\x00" * 12, 256)


def test_real_book_chunks_rank_the_right_section_first(wordllama):
    from pathlib import Path

    from agentic_pipeline.ingest import chunking, ranking
    from agentic_pipeline.ingest.extract import extract

    book = extract(Path(__file__).resolve().parents[2] / "samples" / "books" / "waste-land.epub")
    chunks = chunking.chunk_chapters(book.chapters, max_tokens=256, overlap_tokens=32,
                                     count_tokens=wordllama.count_tokens)
    matrix = wordllama.embed([c.text for c in chunks])
    titles = {c.index: c.title for c in book.chapters}
    for query, expected in [("April is the cruellest month, breeding lilacs", "BURIAL OF THE DEAD"),
                            ("Phlebas the Phoenician, a fortnight dead", "DEATH BY WATER")]:
        (row, score), *_ = ranking.top_k(wordllama.embed([query])[0], matrix, 3)
        assert expected in titles[chunks[row].chapter_index], (query, chunks[row].text[:80])
        assert 0 < score <= 1.0001
