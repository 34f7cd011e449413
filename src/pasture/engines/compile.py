"""Compile a few vendored llama.cpp sources into a small library beside the engine.

The quantizer (`quantizer`) and ggml's RPC backend (`pasture.rpc.library`) are each one
or two source files the engine's wheel leaves out; both compile once, in seconds, into a
shared library that resolves everything else from the loaded engine.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pasture.errors import PastureError

log = logging.getLogger(__name__)


def compile_library(arguments: Sequence[str], target: Path, what: str,
                    error: type[PastureError]) -> Path:
    """Compile C++17 `arguments` (flags and sources) into shared library `target`, which
    appears whole or not at all (builds may race); `error` (with `what` is being built)
    if there is no compiler or the compiler fails."""
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")
    if not compiler:
        raise error(f"a C++ compiler is needed to build {what} once (apt install g++)")
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".tmp-{secrets.token_hex(8)}-{target.name}")
    log.info("building %s in %s", what, target.parent)
    result = subprocess.run(
        [compiler, "-std=c++17", "-O2", "-fPIC", "-shared", *arguments, "-o", str(temp)],
        capture_output=True, text=True)
    if result.returncode != 0:
        temp.unlink(missing_ok=True)
        log.error("building %s failed:\n%s", what, result.stderr[-4000:])
        raise error(f"building {what} failed (see the server log)")
    os.replace(temp, target)
    return target
