"""The atheris driver behind each `fuzz/fuzz_<target>.py`.

    python fuzz/fuzz_gguf.py [libFuzzer flags] [CORPUS_DIR ...]

With no corpus folder given it fuzzes a fresh temporary copy of the seeds (`fuzz/seeds.py`).
Pasture's modules are instrumented for coverage; libFuzzer's exit status is non-zero and a
`crash-*` file is written (see `-artifact_prefix=`) when a target raises.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

REPO = Path(__file__).resolve().parents[1]


def main(target: str) -> None:
    for path in (str(REPO / "src"), str(REPO)):
        if path not in sys.path:
            sys.path.insert(0, path)
    with atheris.instrument_imports(include=["pasture"]):
        from fuzz import targets
    from fuzz import seeds

    test_one: Callable[[bytes], None] = getattr(targets, target)
    args = sys.argv[:]
    if not any(not a.startswith("-") for a in args[1:]):  # no corpus folder: use the seeds
        corpus = Path(tempfile.mkdtemp(prefix=f"pasture-fuzz-{target}-"))
        args.append(str(seeds.write(corpus, target)))
    atheris.Setup(args, test_one)
    atheris.Fuzz()
