"""ggml's RPC backend, compiled once against the installed engine and called through ctypes.

The engine (xllamacpp) exports ggml's backend API but has no RPC backend
(`ggml_rpc/README.md`); its two source files, vendored from the same release, compile in
about ten seconds into a library whose every ggml call resolves into the engine already
loaded in the process. An engine built with `GGML_RPC=ON` carries the backend itself and
is used as it is. The same functions serve both sides: `attach` in a runner, before the
model loads (llama.cpp's `--rpc`), and `serve` in `pasture worker` (llama.cpp's
`rpc-server`).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import logging
import mmap
import os
from collections.abc import Sequence
from pathlib import Path

from pasture.engines.compile import compile_library
from pasture.errors import PastureError

log = logging.getLogger(__name__)

SOURCES = Path(__file__).parent / "ggml_rpc"
PUBLIC_HEADERS = Path(__file__).parents[1] / "engines" / "llama_quant" / "vendor" / "ggml" / \
    "include"
LIBRARY_NAME = "libpasture_rpc.so"
_HOST_DEVICES = (0, 3)  # GGML_BACKEND_DEVICE_TYPE_CPU and _ACCEL (ggml-backend.h)


class RpcUnavailable(PastureError):
    """The RPC backend cannot be built or loaded here (not the request's fault: 500)."""


def vendored_version() -> str:
    return (SOURCES / "XLLAMACPP_VERSION").read_text().strip()


def library_path(engines: Path, version: str | None = None) -> Path:
    """Where the RPC library for engine `version` (None: the installed one) is, or will
    be, under `engines`."""
    return engines / ".rpc" / (version or importlib.metadata.version("xllamacpp")) / \
        LIBRARY_NAME


def available(engines: Path, version: str, site: Path | None = None) -> bool:
    """Whether an engine of `version` can attach RPC workers: the library is built for
    it, or the engine (the build at `site`; None: the installed wheel) has the backend
    compiled in (`GGML_RPC=ON`)."""
    if library_path(engines, version).is_file():
        return True
    folder = site / "xllamacpp" if site is not None else _installed_package()
    return any(_exports_rpc(path) for path in folder.glob("xllamacpp*.so"))


def _installed_package() -> Path:
    spec = importlib.util.find_spec("xllamacpp")
    return Path(next(iter(spec.submodule_search_locations or ["."]))) if spec else Path(".")


def _exports_rpc(library: Path) -> bool:
    """A symbol of the RPC backend alone (llama.cpp's own code names `…_add_server` in a
    string even without it)."""
    with open(library, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(b"ggml_backend_is_rpc\0") != -1


def build(engines: Path) -> Path:
    """The RPC library, compiled first if it is not there yet (blocking: ~10 s)."""
    target = library_path(engines)
    if target.is_file():
        return target
    installed, vendored = importlib.metadata.version("xllamacpp"), vendored_version()
    if installed != vendored:  # ggml's structs must match the headers exactly
        raise RpcUnavailable(f"RPC needs xllamacpp {vendored} (its RPC backend is vendored "
                             f"for that release); {installed} is installed")
    source = SOURCES / "src" / "ggml-rpc"
    return compile_library(
        ["-DGGML_BACKEND_SHARED", "-DGGML_BACKEND_BUILD", f"-I{SOURCES / 'include'}",
         f"-I{PUBLIC_HEADERS}", f"-I{SOURCES / 'src'}", str(source / "ggml-rpc.cpp"),
         str(source / "transport.cpp")],
        target, f"ggml's RPC backend for xllamacpp {installed}", RpcUnavailable)


def _engine() -> ctypes.CDLL:
    """The engine imported in this process, its symbols made global so that the RPC
    library resolves ggml's functions into it (Python loads extensions privately)."""
    import xllamacpp

    found = sorted(Path(xllamacpp.__file__).parent.glob("xllamacpp*.so"))
    if not found:
        raise RpcUnavailable("the xllamacpp engine library was not found")
    return ctypes.CDLL(str(found[0]), mode=ctypes.RTLD_GLOBAL | os.RTLD_NOLOAD)


def _backend(engine: ctypes.CDLL, library: Path) -> ctypes.CDLL:
    """Whatever provides ggml's RPC functions: the engine itself when built with them."""
    rpc = engine if hasattr(engine, "ggml_backend_rpc_add_server") else ctypes.CDLL(str(library))
    rpc.ggml_backend_rpc_add_server.argtypes = [ctypes.c_char_p]
    rpc.ggml_backend_rpc_add_server.restype = ctypes.c_void_p
    rpc.ggml_backend_rpc_start_server.argtypes = [
        ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_void_p)]
    rpc.ggml_backend_rpc_start_server.restype = None
    return rpc


def attach(endpoints: Sequence[str], library: Path) -> None:
    """Register the devices of the RPC servers at `endpoints` with ggml, in order, so
    that llama.cpp's default device list (remote devices first, then local GPUs) has
    them when the model loads. Call before the model loads, once per process. A server
    that does not answer ggml's handshake ends the process (llama.cpp aborts): the parent
    checks that each is listening first."""
    engine = _engine()
    rpc = _backend(engine, library)
    engine.ggml_backend_register.argtypes = [ctypes.c_void_p]
    engine.ggml_backend_register.restype = None
    for endpoint in endpoints:
        registry = rpc.ggml_backend_rpc_add_server(endpoint.encode())
        if not registry:
            raise RpcUnavailable(f"RPC worker {endpoint} offers no device")
        engine.ggml_backend_register(registry)


def offered_devices(engine: ctypes.CDLL) -> list[int]:
    """What a worker offers, as llama.cpp's rpc-server chooses: every GPU-like device
    the engine sees, else the CPU."""
    engine.ggml_backend_dev_count.restype = ctypes.c_size_t
    engine.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    engine.ggml_backend_dev_get.restype = ctypes.c_void_p
    engine.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    engine.ggml_backend_dev_type.restype = ctypes.c_int
    engine.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
    engine.ggml_backend_dev_by_type.restype = ctypes.c_void_p
    every = [engine.ggml_backend_dev_get(i) for i in range(engine.ggml_backend_dev_count())]
    gpus = [d for d in every if engine.ggml_backend_dev_type(d) not in _HOST_DEVICES]
    cpu = engine.ggml_backend_dev_by_type(_HOST_DEVICES[0])
    if not gpus and not cpu:
        raise RpcUnavailable("the engine has no device to offer")
    return gpus or [cpu]


def serve(endpoint: str, cache_dir: Path | None, threads: int, library: Path) -> None:
    """Serve this machine's devices (`offered_devices`) to remote runners at `endpoint`
    (blocks for good).
    `cache_dir` keeps large tensors by hash, so a runner loading the same model again
    sends only their hashes."""
    engine = _engine()
    rpc = _backend(engine, library)
    chosen = offered_devices(engine)
    devices = (ctypes.c_void_p * len(chosen))(*chosen)
    cache = os.fsencode(cache_dir) if cache_dir is not None else None
    rpc.ggml_backend_rpc_start_server(endpoint.encode(), cache, threads, len(chosen), devices)
    raise RpcUnavailable(f"the RPC server could not listen on {endpoint}")
