"""The prompt cache's bookkeeping on disk: what is trusted, what is trimmed, and the key."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from pasture.runner.base import LoadSpec
from pasture.runner.prompt_cache import PromptCache, _seal, _verified, cache_key


def _sealed(folder: Path, name: str, size: int, key: str = "k", age: float = 0) -> Path:
    partial = folder / (name + ".partial")
    partial.write_bytes(os.urandom(size))
    _seal(folder, partial.name, name, key, 300)
    path = folder / name
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def test_trim_keeps_the_most_recently_used_files_within_the_limit(tmp_path: Path) -> None:
    old = _sealed(tmp_path, "a-slot-0.bin", 600, age=30)
    new = _sealed(tmp_path, "b-slot-0.bin", 600, age=10)
    PromptCache(tmp_path, limit=1000).trim()
    assert not old.exists() and not old.with_suffix(".json").exists()
    assert new.exists() and new.with_suffix(".json").exists()


def test_trim_removes_what_is_not_a_sealed_file_but_spares_a_save_in_progress(
        tmp_path: Path) -> None:
    stray = tmp_path / "stray.bin"
    stray.write_bytes(b"x")
    lone_record = tmp_path / "c-slot-0.json"
    lone_record.write_text("{}")
    old_partial = tmp_path / "d-slot-0.1234.partial"
    old_partial.write_bytes(b"x")
    os.utime(old_partial, (0, 0))
    in_progress = tmp_path / "e-slot-0.5678.partial"
    in_progress.write_bytes(b"x")
    PromptCache(tmp_path, limit=1 << 30).trim()
    assert not stray.exists() and not old_partial.exists()
    assert lone_record.exists()  # a fresh record may be a seal half done
    assert in_progress.exists()


def test_only_an_unchanged_file_of_the_same_key_is_trusted(tmp_path: Path) -> None:
    path = _sealed(tmp_path, "a-slot-0.bin", 100, key="a")
    assert _verified(tmp_path, path.name, "a")
    assert not _verified(tmp_path, path.name, "b")  # another model's: removed
    assert not path.exists()
    path = _sealed(tmp_path, "a-slot-0.bin", 100, key="a")
    path.write_bytes(b"\0" + path.read_bytes()[1:])
    assert not _verified(tmp_path, path.name, "a")
    assert not path.exists() and not path.with_suffix(".json").exists()


def test_the_key_ignores_threads_slots_and_speculation_not_the_context_or_engine(
        tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    spec = LoadSpec(str(model), num_ctx=4096)
    key = cache_key(spec, "default 1.0")
    same = dataclasses.replace(spec, num_thread=3, num_parallel=4, speculative="ngram_mod")
    assert cache_key(same, "default 1.0") == key
    assert cache_key(dataclasses.replace(spec, num_ctx=2048), "default 1.0") != key
    assert cache_key(spec, "default 1.1") != key
    model.write_bytes(b"GGUF2")
    assert cache_key(spec, "default 1.0") != key
