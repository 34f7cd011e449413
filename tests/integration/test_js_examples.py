"""Every JavaScript example in clients/js/examples/ runs against the shared live server.

They import the package by its name (`pasture`), which Node resolves to the committed
`dist/` through the package's own `exports`, so they run from a fresh clone as they are.
Each is run from an unrelated directory, with the server in PASTURE_HOST as a user sets it.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import MODEL, RunningServer
from tests.integration.js import JS, client_env, node

EXAMPLES = sorted((JS / "examples").glob("*.mjs"))


def _chat(out: str) -> None:
    *answers, timing = out.splitlines()
    assert "".join(answers).strip(), out
    assert re.fullmatch(r"\(\d+ tokens in \d+\.\d\d s\)", timing), out


def _streaming(out: str) -> None:
    match = re.search(r"\n\[(stop|length), (\d+) tokens in (\d+) parts\]$", out)
    assert match, out
    assert out[:match.start()].strip()
    assert int(match[3]) >= 2


def _tools(out: str) -> None:
    call = re.search(r'^model called add\(\{"a":(-?\d+),"b":(-?\d+)\}\) = (-?\d+)$', out,
                     re.MULTILINE)
    assert call, out
    assert int(call[1]) + int(call[2]) == int(call[3])


def _structured(out: str) -> None:
    match = re.fullmatch(r"name=(.+) capital=(.+) population_millions=(\d+)", out, re.DOTALL)
    assert match, out
    assert 0 <= int(match[3]) <= 2000


def _embeddings(out: str) -> None:
    rows = [line.split("  ", 1) for line in out.splitlines()]
    assert sorted(sentence for _, sentence in rows) == [
        "A kitten was napping.", "Stocks fell sharply today.", "The cat sat on the mat."]
    scores = [float(score) for score, _ in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(-1 <= score <= 1 for score in scores)


def _abort(out: str) -> None:
    assert re.search(r"^aborted after 5 parts$", out, re.MULTILINE), out
    assert re.search(r"^next request: done=true, \d+ tokens: ", out, re.MULTILINE), out


CHECKS: dict[str, Callable[[str], None]] = {
    "chat": _chat, "streaming": _streaming, "tools": _tools, "structured": _structured,
    "embeddings": _embeddings, "abort": _abort,
}


def test_every_example_has_a_check() -> None:
    assert {path.stem for path in EXAMPLES} == set(CHECKS)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_js_example_runs(example: Path, server: RunningServer, tmp_path: Path) -> None:
    env = client_env(PASTURE_HOST=server.url, PASTURE_EXAMPLE_MODEL=MODEL)
    done = subprocess.run([node(), str(example)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    CHECKS[example.stem](done.stdout.strip())
