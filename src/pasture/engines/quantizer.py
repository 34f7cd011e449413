"""llama.cpp's quantizer: compiled once against the installed engine, run in a child.

The wheel exports llama.cpp's loader and ggml's kernels but not `llama_model_quantize`
(`llama_quant/README.md`), so its one missing source file, vendored from the same
xllamacpp release, is compiled into a small library that takes everything else from the
wheel. Quantizing reads an untrusted GGUF and takes minutes of every core on a large
model, so it runs in a child process: at low priority, with its output file capped, its
anonymous memory watched like a runner's, and killed when the request goes away. Its
progress comes from the per-tensor lines llama.cpp logs (`[  12/ 201] blk.0.attn_k...`),
the same lines Ollama reads from `llama-quantize`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import mmap
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from pasture.engines import worker
from pasture.engines.compile import compile_library
from pasture.errors import BadRequestError, PastureError, RunnerError

log = logging.getLogger(__name__)

SOURCES = Path(__file__).parent / "llama_quant"
LIBRARY_NAME = "libpasture_quant.so"
# llm_arch_from_string(const std::string &) as the C++11 string ABI mangles it: the wheel
# is built with one std::string ABI or the other, and the library must use the same.
_CXX11_MARK = b"_Z20llm_arch_from_stringRKNSt7__cxx1112basic_string"
_PROGRESS = re.compile(rb"\[\s*(\d+)/\s*(\d+)\]")


class QuantizerUnavailable(PastureError):
    """The quantizer cannot be built or run on this server (500: not the request's fault)."""


def engine_library() -> Path:
    """The installed engine's shared library (the default wheel, whatever build serves)."""
    spec = importlib.util.find_spec("xllamacpp")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        found = sorted(Path(folder).glob("xllamacpp*.so"))
        if found:
            return found[0]
    raise QuantizerUnavailable("quantization needs the xllamacpp engine, which is not installed")


def vendored_version() -> str:
    return (SOURCES / "vendor" / "XLLAMACPP_VERSION").read_text().strip()


def uses_cxx11_abi(library: Path) -> bool:
    """Whether `library` exports llama.cpp's C++ symbols with the C++11 std::string ABI."""
    with open(library, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(_CXX11_MARK) != -1


def library_path(cache: Path) -> Path:
    """Where the quantizer for the installed engine is (or will be) built under `cache`."""
    version = importlib.metadata.version("xllamacpp")
    return cache / ".quantizer" / version / LIBRARY_NAME


def build(cache: Path) -> Path:
    """The quantizer library, compiled first if it is not there yet (blocking: ~35 s)."""
    target = library_path(cache)
    if target.is_file():
        return target
    installed, vendored = importlib.metadata.version("xllamacpp"), vendored_version()
    if installed != vendored:  # the loader's class layouts must match the headers
        raise QuantizerUnavailable(
            f"quantization needs xllamacpp {vendored} (its quantizer source is vendored "
            f"for that release); {installed} is installed")
    abi = int(uses_cxx11_abi(engine_library()))
    vendor = SOURCES / "vendor"
    return compile_library(
        [f"-D_GLIBCXX_USE_CXX11_ABI={abi}", f"-I{vendor / 'include'}",
         f"-I{vendor / 'ggml' / 'include'}", f"-I{vendor / 'src'}", str(SOURCES / "shim.cpp"),
         str(vendor / "src" / "llama-quant.cpp")],
        target, f"llama.cpp's quantizer for xllamacpp {installed}", QuantizerUnavailable)


async def quantize(library: Path, source: Path, target: Path, ftype: int, *, threads: int,
                   max_output: int, memory_limit: int | None) -> AsyncIterator[tuple[int, int]]:
    """Quantize GGUF `source` to llama.cpp file type `ftype`, written to `target`, yielding
    (tensors done, tensors in all) as it goes. RunnerError if the engine refuses the file
    or the child dies; closing the iterator early kills the child."""
    lines = worker.stderr_lines(
        [sys.executable, "-m", "pasture.engines.quantize_main", str(engine_library()),
         str(library), str(source), str(target), str(ftype), str(threads), str(max_output)],
        memory_limit=memory_limit, what="quantizing")
    last_error = ""
    try:
        async with contextlib.aclosing(lines):  # leaving early kills the child
            async for line in lines:
                if found := _PROGRESS.search(line):
                    yield int(found.group(1)), int(found.group(2))
                elif b"error" in line.lower() or b"failed" in line.lower():
                    last_error = line.decode(errors="replace").strip()
    except worker.WorkerExited as exc:
        log.error("quantizing %s failed (exit %s): %s", source, exc.code, last_error)
        if exc.code < 0:  # a signal: a crash, or past its output cap (SIGXFSZ)
            raise RunnerError("the quantizer stopped unexpectedly (see the server log)") \
                from None
        raise BadRequestError("llama.cpp could not quantize this model"
                              + (f": {without_paths(last_error)}" if last_error else "")
                              ) from None


def without_paths(message: str) -> str:
    """An engine message fit for an error body: no file paths, not too long."""
    return re.sub(r"(/[^\s:'\"]+)+", "<file>", message)[:200]
