"""sha256_file against the checksums recorded when the samples were collected."""

from __future__ import annotations

import csv
import hashlib

import pytest

from agentic_pipeline.ingest import hashing

from .conftest import BOOKS, BROKEN

# From the corpus MANIFEST.tsv the samples were copied from.
KNOWN = {
    BOOKS / "waste-land.epub": "50724cd24bfa72502aa5d3ad1ca2f3d459ab0fe50e3a296a758a30c6f2da87a6",
    BOOKS / "romeo-juliet.epub": "80ec2025c7736e1efaa1804965050b0a6ae8a970788fa312ea3dced47208a2e6",
    BOOKS / "kusamakura-ja.epub": "5a9a33879d294458617236d1c33ead01ce1d738a5a72051286c44fa11ae5eca7",
    BOOKS / "r-intro.pdf": "337ccd0b490b1e66f7e783b45f4588d0599730b4206c0c051edfe1419c568c51",
    BOOKS / "fsm-drivers.pdf": "6bb083a156585aed995c5d1a12020abc9504e0264940ce9623fd4313b036acd2",
    BROKEN / "empty.epub": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    BROKEN / "password.pdf": "d2d57b5d910d43585e58ac16aa0f0cadf8f8f1d9b07f7c12ad12429ffdd82554",
}


@pytest.mark.parametrize("path", list(KNOWN), ids=lambda p: p.name)
def test_sha256_matches_manifest(path):
    assert hashing.sha256_file(path) == KNOWN[path]


def test_streams_files_larger_than_one_block(tmp_path):
    data = (b"0123456789abcdef" * 70_000)[: hashing.BLOCK_SIZE + 12345]
    target = tmp_path / "big.bin"
    target.write_bytes(data)
    assert hashing.sha256_file(str(target)) == hashlib.sha256(data).hexdigest()


def test_every_sample_is_listed_in_licenses(samples):
    with open(samples / "LICENSES.tsv", newline="", encoding="utf-8") as handle:
        listed = {row["path"] for row in csv.DictReader(handle, delimiter="\t")}
    on_disk = {str(p.relative_to(samples)) for p in samples.glob("*/*") if p.is_file()}
    assert on_disk == listed
