"""Shared fixtures for the ingest tests: the bundled sample books (real files, never fakes)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
BOOKS = SAMPLES / "books"
BROKEN = SAMPLES / "broken"
CORPUS = REPO.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def books() -> Path:
    return BOOKS


@pytest.fixture(scope="session")
def broken() -> Path:
    return BROKEN
