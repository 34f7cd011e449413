"""Child-process entry point: load one model into llama.cpp's server and serve it.

Run as `python -m pasture.runner.main '<LoadSpec JSON>' [HOST]` (HOST, the address to
listen on, is 127.0.0.1 unless a cluster node serves its runners to the front end; the
spec may add `slot_save_path` when slots are saved to a prompt cache), with the engine's
API key as the first line of stdin (a key on the command line would be readable by any
local user in /proc). Prints one JSON line on stdout — `{"address": "http://127.0.0.1:PORT",
"media_marker": ..., "version": ...}` (the marker only with a projector; the engine's
version) or `{"error": "..."}` — then serves until its stdin closes, which happens when
the parent exits or unloads the model.
The process ends with `os._exit`, never by deleting the engine (that can hang).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

_MAX_DEVICES = 128  # llama.cpp's LLAMA_MAX_DEVICES: the length of `tensor_split`


def engine_params(spec: dict[str, Any], api_key: str | None = None,
                  host: str = "127.0.0.1") -> Any:
    """llama.cpp `CommonParams` for a load spec (see `pasture.runner.base.LoadSpec`),
    listening on `host`; with `api_key`, the engine's port answers only requests bearing
    it."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    if api_key:
        params.api_keys = [api_key]
    params.model.path = spec["model_path"]
    params.n_parallel = spec["num_parallel"]
    # Each slot gets the full context the user asked for, as in Ollama (-c num_ctx × P).
    params.n_ctx = spec["num_ctx"] * spec["num_parallel"]
    # An answer may run past the context, as in Ollama (`shift`, on unless a request says
    # false: then the pipeline caps num_predict); each request sends its own n_keep.
    params.ctx_shift = True
    params.n_batch = spec["num_batch"]
    params.n_gpu_layers = spec["num_gpu"]
    if spec.get("rpc_servers"):  # attached (`attach_workers`) before the model loads
        _split_layers(params, spec)
    threads = spec["num_thread"] or os.cpu_count() or 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.fit_params = False
    # Level 4 logs each buffer's size (`CPU KV buffer size = … MiB`) and the offloaded
    # layer count, which the parent parses for /api/ps (pasture.runner.buffers).
    params.verbosity = 4
    kv_type = spec.get("kv_cache_type") or "f16"
    if kv_type != "f16":
        ggml_type = getattr(xllamacpp.ggml_type, f"GGML_TYPE_{kv_type.upper()}")
        params.cache_type_k = params.cache_type_v = ggml_type
    params.cache_prompt = True
    if spec.get("slot_save_path"):  # where the parent's prompt cache saves slots
        params.slot_save_path = spec["slot_save_path"]
    params.warmup = False
    params.port = 0
    params.hostnames = [host]
    if spec.get("use_mmap") is not None:
        modes = xllamacpp.llama_load_mode
        mmap = spec["use_mmap"]
        params.load_mode = modes.LLAMA_LOAD_MODE_MMAP if mmap else modes.LLAMA_LOAD_MODE_NONE
    kinds = xllamacpp.llama_flash_attn_type
    params.flash_attn_type = {None: kinds.LLAMA_FLASH_ATTN_TYPE_AUTO,
                              True: kinds.LLAMA_FLASH_ATTN_TYPE_ENABLED,
                              False: kinds.LLAMA_FLASH_ATTN_TYPE_DISABLED,
                              }[spec.get("flash_attention")]
    if spec.get("embedding"):
        params.embedding = True
        params.embd_normalize = -1  # raw vectors: the server normalises (/api/embeddings doesn't)
        if spec.get("pooling"):
            pooling = f"LLAMA_POOLING_TYPE_{spec['pooling'].upper()}"
            params.pooling_type = getattr(xllamacpp.llama_pooling_type, pooling)
        else:  # the model's own pooling may be non-causal: a whole input must fit one ubatch
            params.n_ubatch = spec["num_batch"]
    if spec["adapters"]:
        adapters = []
        for path in spec["adapters"]:
            adapter = xllamacpp.CommonAdapterLoraInfo()
            adapter.path, adapter.scale = path, 1.0
            adapters.append(adapter)
        params.lora_adapters = adapters
    if spec.get("draft_model"):
        _speculative_draft(xllamacpp, params, spec)
    elif spec.get("speculative"):
        kind = f"COMMON_SPECULATIVE_TYPE_{spec['speculative'].upper()}"
        params.speculative.types = [getattr(xllamacpp.common_speculative_type, kind)]
    if spec.get("projector"):
        params.mmproj.path = spec["projector"]
    return params


def _split_layers(params: Any, spec: dict[str, Any]) -> None:
    """Offload the RPC workers' layers and a local GPU's: llama.cpp lists remote devices
    first, so `tensor_split` gives each worker its count, then the local GPU its own."""
    remote = [float(n) for n in spec["rpc_layers"][:-1]]
    params.n_gpu_layers = int(sum(remote)) + spec["num_gpu"]
    shares = [*remote, spec["num_gpu"]] if spec["num_gpu"] else remote
    params.tensor_split = shares + [0.0] * (_MAX_DEVICES - len(shares))  # fixed length


def attach_workers(spec: dict[str, Any]) -> None:
    """Register the spec's RPC workers with ggml (`pasture.rpc.library.attach`)."""
    from pasture.config import engines_dir
    from pasture.rpc import library

    library.attach(spec["rpc_servers"], library.library_path(engines_dir()))


def media_marker(address: str, api_key: str) -> str:
    """The text the engine swaps for an image in a prompt: llama-server picks a random one
    per process and reports it in `/props`; older builds use mtmd's fixed default."""
    import http.client

    host, _, port = address.removeprefix("http://").rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", "/props", headers={"Authorization": f"Bearer {api_key}"})
        props = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    return props.get("media_marker") or "<__media__>"


def _speculative_draft(xllamacpp: Any, params: Any, spec: dict[str, Any]) -> None:
    """Speculative decoding with a draft model, placed like the main model.

    The nested parameter objects are references into `params`: set through the chain
    (the wrappers refuse assigning `speculative.draft` whole).
    """
    draft = params.speculative.draft
    draft.mparams.path = spec["draft_model"]
    draft.n_gpu_layers = spec["num_gpu"]
    draft.n_max = spec["draft_num_predict"]
    draft.cpuparams.n_threads = params.cpuparams.n_threads
    draft.cpuparams_batch.n_threads = params.cpuparams_batch.n_threads
    params.speculative.types = [
        xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]


def main() -> None:
    spec = json.loads(sys.argv[1])
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    # Only the parent knows this per-start key: any other local process reaching the
    # engine's loopback port gets 401 (PASTURE_API_KEYS would mean nothing otherwise).
    api_key = sys.stdin.readline().strip()
    if spec.get("num_gpu") == 0:
        # Placed on the CPU: hide CUDA GPUs before the engine starts, so the runner takes
        # no GPU memory (a CUDA context, op-offload compute buffers) and /api/ps is honest.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    try:
        import xllamacpp

        if spec.get("rpc_servers"):
            attach_workers(spec)
        server = xllamacpp.Server(engine_params(spec, api_key, host))
        address = server.listening_address
        marker = media_marker(address, api_key) if spec.get("projector") else None
    except Exception as exc:  # the engine reports load failures as plain exceptions
        print(json.dumps({"error": str(exc) or type(exc).__name__}), flush=True)
        os._exit(1)
    print(json.dumps({"address": address, "media_marker": marker,
                      "version": xllamacpp.__version__}), flush=True)
    sys.stdin.read()  # returns at EOF: the parent is gone or wants us to stop
    os._exit(0)


if __name__ == "__main__":
    main()
