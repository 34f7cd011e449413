"""Every setting Pasture reads from the environment, in one place.

Each `PASTURE_X` variable falls back to Ollama's `OLLAMA_X`, so an existing Ollama
setup keeps working (`pasture.environment` reads them). Defaults are Ollama's. Settings
are read once, by `Settings.from_env()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pasture.durations import parse_keep_alive
from pasture.environment import HostPort, env, parse_host, pasture_only


def _int(name: str, default: int, environ: dict[str, str] | None) -> int:
    value = env(name, environ)
    return int(value) if value is not None else default


def _seconds(name: str, default: float, environ: dict[str, str] | None) -> float:
    """A duration setting: bare seconds (`30`) or Go syntax (`1m`, `500ms`)."""
    value = env(name, environ)
    return parse_keep_alive(value, bare_int_seconds=True) if value else default


@dataclass(frozen=True)
class Settings:
    """The server's configuration."""

    host: HostPort
    models_dir: Path
    keep_alive: float  # seconds; negative = forever
    num_parallel: int  # slots per model; 0: chosen per model from memory (placement.py)
    max_queue: int  # requests waiting, for a load or a slot, before 503
    max_loaded_models: int
    load_timeout: float  # seconds; <= 0 = no limit
    context_length: int
    num_threads: int
    debug: bool
    noprune: bool = False  # keep unused blobs at start-up and after a pull (OLLAMA_NOPRUNE)
    kv_cache_type: str = "f16"  # K/V element type: f16, q8_0, q4_0 (OLLAMA_KV_CACHE_TYPE)
    flash_attention: bool | None = None  # None: the engine decides (OLLAMA_FLASH_ATTENTION)
    gpu_overhead: int = 0  # bytes kept free on each GPU (OLLAMA_GPU_OVERHEAD)
    gpu_memory_limit: int | None = None  # cap on the GPU memory Pasture uses, per GPU
    origins: tuple[str, ...] = ()  # extra CORS origins (OLLAMA_ORIGINS), added to defaults
    api_keys: frozenset[str] = frozenset()  # when set, requests need a Bearer key
    max_body: int = 64 << 20  # JSON request bodies (images come base64 inside them)
    max_blob: int = 1 << 40  # blob uploads
    # Each image, decoded: OpenAI's per-image limit; a base64 one still fits in max_body.
    max_image_bytes: int = 20 << 20
    # Engine builds beside the installed wheel (`pasture engine`); PASTURE_ENGINES.
    engines_dir: Path = field(default_factory=lambda: engines_dir({}))
    engine: str | None = None  # PASTURE_ENGINE: the engine build to use first, by name
    header_timeout: float = 10.0  # seconds to send a request head; 0 = none (edge/timeouts.py)
    body_timeout: float = 60.0  # seconds a request body may go silent; 0 = none
    queue_timeout: float | None = None  # seconds a request may wait in the queue; None: any
    # A request body must be in within body_deadline plus a second per body_min_rate
    # bytes received (edge/timeouts.py); 0 = no deadline.
    body_deadline: float = 30.0
    body_min_rate: int = 1000  # bytes a second
    max_connections: int = 1000  # open client connections; lowered to fit the fd limit
    # Each runner's anonymous memory; None: half the RAM (runner/watchdog.py), 0: no cap.
    runner_memory_limit: int | None = None
    max_embed_inputs: int = 2048  # inputs in one embedding request
    metrics: bool = True  # GET /metrics (PASTURE_METRICS=0: off, and nothing recorded)
    # Serve https with this certificate chain and key (PEM files), both or neither.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # A Ray cluster's address (HEAD:6379) to place runners on its nodes (docs/cluster.md);
    # None: runners are children of this server.
    cluster: str | None = None
    # In a cluster, runners of one model on different nodes (PASTURE_MAX_REPLICAS): one
    # more is started when a request has waited `replica_after` seconds for a slot.
    max_replicas: int = 1
    replica_after: float = 2.0
    # In a cluster, each node's agent runs an RPC worker on the node's address, and a
    # model that fits no single node is split over several (PASTURE_CLUSTER_RPC=1).
    cluster_rpc: bool = False
    # Registries whose pulls go elsewhere (`PASTURE_REGISTRY_MIRRORS="hf.co=https://m.example"`):
    # a name keeps its host (and its place in the store), only the requests move.
    registry_mirrors: tuple[tuple[str, str], ...] = ()
    # Disk for prompt caches kept across reloads (runner/prompt_cache.py); 0: none kept.
    prompt_cache_size: int = 2 << 30
    # RPC workers (`pasture worker`, host:port) that take a share of each model's layers
    # (docs/rpc.md), and the shares: one per worker, then this machine's (unset: by the
    # memory free on each at each load).
    rpc_servers: tuple[str, ...] = ()
    rpc_split: tuple[float, ...] = ()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        models = env("MODELS", environ)
        keep_alive = env("KEEP_ALIVE", environ)
        return cls(
            host=parse_host(env("HOST", environ)),
            models_dir=Path(models).expanduser() if models else Path.home() / ".pasture" / "models",
            keep_alive=parse_keep_alive(keep_alive, bare_int_seconds=True) if keep_alive else 300.0,
            num_parallel=max(0, _int("NUM_PARALLEL", 0, environ)),
            max_queue=max(1, _int("MAX_QUEUE", 512, environ)),
            max_loaded_models=max(1, _int("MAX_LOADED_MODELS", 3, environ)),
            load_timeout=_seconds("LOAD_TIMEOUT", 300.0, environ),
            context_length=_int("CONTEXT_LENGTH", 4096, environ),
            num_threads=_int("NUM_THREADS", 0, environ),
            debug=env("DEBUG", environ) not in (None, "0", "false", "False"),
            noprune=env("NOPRUNE", environ) not in (None, "0", "false", "False"),
            kv_cache_type=_kv_cache_type(env("KV_CACHE_TYPE", environ)),
            flash_attention=_flash_attention(env("FLASH_ATTENTION", environ)),
            gpu_overhead=parse_bytes(env("GPU_OVERHEAD", environ) or "0"),
            gpu_memory_limit=_optional_bytes(env("GPU_MEMORY_LIMIT", environ)),
            origins=tuple(o.strip() for o in (env("ORIGINS", environ) or "").split(",")
                          if o.strip()),
            api_keys=_api_keys(env("API_KEYS", environ), env("API_KEYS_FILE", environ)),
            max_body=parse_bytes(env("MAX_BODY", environ) or str(64 << 20)),
            max_blob=parse_bytes(env("MAX_BLOB", environ) or str(1 << 40)),
            max_image_bytes=parse_bytes(env("MAX_IMAGE_BYTES", environ) or str(20 << 20)),
            engines_dir=engines_dir(environ),
            engine=pasture_only("ENGINE", environ),
            header_timeout=_seconds("HEADER_TIMEOUT", 10.0, environ),
            body_timeout=_seconds("BODY_TIMEOUT", 60.0, environ),
            queue_timeout=_seconds("QUEUE_TIMEOUT", 0.0, environ) or None,
            body_deadline=_seconds("BODY_DEADLINE", 30.0, environ),
            body_min_rate=max(0, _int("BODY_MIN_RATE", 1000, environ)),
            max_connections=max(1, _int("MAX_CONNECTIONS", 1000, environ)),
            runner_memory_limit=_optional_bytes(pasture_only("RUNNER_MEMORY_LIMIT", environ)),
            max_embed_inputs=max(1, int(pasture_only("MAX_EMBED_INPUTS", environ) or 2048)),
            metrics=pasture_only("METRICS", environ) not in ("0", "false", "False"),
            **_tls_files(pasture_only("TLS_CERT", environ), pasture_only("TLS_KEY", environ)),
            cluster=pasture_only("CLUSTER", environ),
            max_replicas=max(1, int(pasture_only("MAX_REPLICAS", environ) or 1)),
            replica_after=float(pasture_only("REPLICA_AFTER", environ) or 2.0),
            cluster_rpc=pasture_only("CLUSTER_RPC", environ) not in (None, "0", "false", "False"),
            registry_mirrors=parse_mirrors(pasture_only("REGISTRY_MIRRORS", environ)),
            prompt_cache_size=parse_bytes(pasture_only("PROMPT_CACHE_SIZE", environ)
                                          or str(2 << 30)),
            **_rpc(pasture_only("RPC_SERVERS", environ), pasture_only("RPC_SPLIT", environ)),
        )

    @property
    def url(self) -> str:
        """Where the server can be reached: `host`, over https when it serves TLS."""
        scheme = "https" if self.tls_cert else "http"
        return HostPort(scheme, self.host.host, self.host.port).url


def _tls_files(cert: str | None, key: str | None) -> dict[str, Path]:
    """PASTURE_TLS_CERT and PASTURE_TLS_KEY: both files, or neither (plain http)."""
    if bool(cert) != bool(key):
        raise ValueError("set both PASTURE_TLS_CERT and PASTURE_TLS_KEY to serve https, "
                         "or neither")
    if not cert or not key:
        return {}
    return {"tls_cert": Path(cert).expanduser(), "tls_key": Path(key).expanduser()}


_BYTE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
               "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
KV_CACHE_TYPES = ("f16", "q8_0", "q4_0")


def _rpc(servers: str | None, shares: str | None) -> dict[str, tuple[Any, ...]]:
    if not servers:
        return {}
    from pasture.rpc.endpoints import parse_endpoints

    endpoints = parse_endpoints(servers)
    return {"rpc_servers": endpoints, "rpc_split": parse_rpc_split(shares, len(endpoints))}


def parse_rpc_split(value: str | None, workers: int) -> tuple[float, ...]:
    """`PASTURE_RPC_SPLIT`: one share per worker, then this machine's (`3,2,1`); unset,
    none: each load splits by the memory free on each side then (`pasture.rpc.workers`).
    ValueError for a count or number that does not fit."""
    if not value:
        return ()
    try:
        weights = tuple(float(part) for part in value.split(","))
    except ValueError:
        raise ValueError(f"PASTURE_RPC_SPLIT {value!r} is not a list of numbers") from None
    if len(weights) != workers + 1:
        raise ValueError(f"PASTURE_RPC_SPLIT needs {workers + 1} shares (one per RPC worker, "
                         f"then this machine's), not {len(weights)}")
    if any(not 0 <= w < float("inf") for w in weights) or not any(weights[:-1]):
        raise ValueError("PASTURE_RPC_SPLIT shares must be numbers >= 0, a worker's above 0")
    return weights


def parse_bytes(value: str) -> int:
    """`1073741824`, `1200MiB`, `1.5GB` -> bytes (ValueError for anything else)."""
    text = value.strip().lower().replace(" ", "")
    number = text.rstrip("kmgtib")
    unit = text[len(number):]
    if unit not in _BYTE_UNITS or not number:
        raise ValueError(f"not a size in bytes: {value!r}")
    return int(float(number) * _BYTE_UNITS[unit])


def _optional_bytes(value: str | None) -> int | None:
    return parse_bytes(value) if value else None


def _kv_cache_type(value: str | None) -> str:
    """Ollama's OLLAMA_KV_CACHE_TYPE: unknown values fall back to f16, as there."""
    value = (value or "f16").lower()
    return value if value in KV_CACHE_TYPES else "f16"


def _flash_attention(value: str | None) -> bool | None:
    """OLLAMA_FLASH_ATTENTION as Ollama reads it: unset leaves it to the engine (auto); Go's
    false spellings turn it off; anything else, even unparsable, turns it on."""
    if value is None:
        return None
    return value not in ("0", "f", "F", "false", "FALSE", "False")


def _api_keys(listed: str | None, file: str | None) -> frozenset[str]:
    """Keys from PASTURE_API_KEYS (comma-separated) and PASTURE_API_KEYS_FILE (one a line)."""
    keys = [k.strip() for k in (listed or "").split(",")]
    if file:
        keys += Path(file).expanduser().read_text().splitlines()
    return frozenset(k.strip() for k in keys if k.strip() and not k.strip().startswith("#"))


def parse_mirrors(value: str | None) -> tuple[tuple[str, str], ...]:
    """`host=url,host=url` -> ((host, url), ...), hosts lower-cased (names compare so),
    URLs without a trailing slash; ValueError for anything else."""
    mirrors = []
    for entry in filter(None, (part.strip() for part in (value or "").split(","))):
        host, _, url = entry.partition("=")
        host, url = host.strip().lower(), url.strip().rstrip("/")
        if not host or "/" in host or not url.startswith(("http://", "https://")) \
                or len(url.split("://", 1)[1]) == 0:
            raise ValueError(f"registry mirror {entry!r} is not host=http(s)://address")
        mirrors.append((host, url))
    return tuple(mirrors)


def engines_dir(environ: dict[str, str] | None = None) -> Path:
    """Where engine builds live: PASTURE_ENGINES, else ~/.pasture/engines."""
    value = pasture_only("ENGINES", environ)
    return Path(value).expanduser() if value else Path.home() / ".pasture" / "engines"
