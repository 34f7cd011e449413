"""`pasture worker`: this machine's CPU as a remote ggml device (llama.cpp's rpc-server).

A runner on another machine (`PASTURE_RPC_SERVERS`) places some of a model's layers here
and sends their weights once; with the tensor cache, weights over ggml's size threshold
are kept on disk by hash and not sent again the next time. The server speaks ggml's RPC
protocol, which llama.cpp calls a proof of concept: it trusts every message, so anyone who
can reach the port can make it read and write memory. Hence the loopback default and the
refusal of a wildcard address without `--allow-wildcard`.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from pasture.config import engines_dir
from pasture.engines.builds import DEFAULT, check_name
from pasture.rpc import library
from pasture.rpc.endpoints import listen_address

WARNING = ("llama.cpp's RPC server trusts every message it receives: expose it only to "
           "machines you trust, never to an untrusted network")


def default_cache() -> Path:
    return Path.home() / ".pasture" / "rpc-cache"


def run(host: str, port: int, threads: int | None, cache: Path | None,
        engine: str | None = None) -> None:
    """Serve until killed, on engine build `engine` (a CUDA build offers its GPUs; None:
    the installed wheel). Builds the RPC backend first if this engine has none yet."""
    address = listen_address(host, allow_wildcard=True)  # the CLI has checked the flag
    if not 0 < port < 65536:
        raise ValueError(f"invalid port {port}")
    if engine is not None and engine != DEFAULT:  # first on the import path, as in a runner
        check_name(engine)
        site = engines_dir() / engine / "site"
        if not (site.parent / "build.json").is_file():
            raise ValueError(f"engine build '{engine}' not found (see `pasture engine list`)")
        sys.path.insert(0, str(site))
    built = library.build(engines_dir())
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    endpoint = f"{address}:{port}"
    print(f"pasture worker on {endpoint} (engine {engine or 'default'}, "
          f"{threads or os.cpu_count()} CPU threads, tensor cache {cache or 'off'})\n"
          f"WARNING: {WARNING}", file=sys.stderr, flush=True)
    # ggml's accept loop runs in C and never returns to Python, whose handlers would
    # then never run: let Ctrl+C and SIGTERM end the process at once.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    library.serve(endpoint, cache, threads or os.cpu_count() or 1, built)
