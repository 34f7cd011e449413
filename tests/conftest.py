"""Fixtures every test layer shares."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The real SmolLM2-135M GGUF, fetched once into the cache (scripts/fetch_models.py)."""
    sys.path.insert(0, str(REPO / "scripts"))
    from fetch_models import SMOLLM2_FILE, fetch_smollm2

    return fetch_smollm2() / SMOLLM2_FILE


@pytest.fixture(scope="session")
def gemma3_gguf() -> Path:
    """The real Gemma 3 270M GGUF (a second architecture), with Gemma 3's Jinja chat
    template, fetched once into the cache (scripts/fetch_models.py)."""
    sys.path.insert(0, str(REPO / "scripts"))
    from fetch_models import GEMMA3_FILE, fetch_gemma3

    return fetch_gemma3() / GEMMA3_FILE
