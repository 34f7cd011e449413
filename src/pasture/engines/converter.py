"""llama.cpp's own converters, from Safetensors to GGUF, run in a child with limits.

`convert_hf_to_gguf.py` (a Hugging Face model directory) and `convert_lora_to_gguf.py` (a
PEFT LoRA adapter), with their `conversion` package and `gguf-py`, come from the source
archive of the installed engine's release, the one `pasture engine build` downloads
(`engines.build.fetch_source`): the converter always matches the engine that will load
its output. They need torch and transformers, Pasture's optional `convert` extra.

The input is untrusted: the child runs fresh (`engines.worker`), at low priority, with
its output file capped (RLIMIT_FSIZE), its memory watched, a time limit, and the Hugging
Face libraries told to stay offline, so no code or file is ever fetched for a model.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import re
import secrets
import shutil
import sys
import tarfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from pasture.engines import worker
from pasture.engines.build import fetch_source
from pasture.engines.quantizer import without_paths
from pasture.errors import BadRequestError, PastureError, RunnerError
from pasture.gguf import GGUFInfo

# What the converters need from the source archive, below thirdparty/llama.cpp/.
_MEMBERS = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/",
            "LICENSE")
# What `pip install 'pasture[convert]'` brings that the converters import.
_NEEDED = ("torch", "transformers", "safetensors", "numpy")
# A line per tensor written: "blk.0.attn_q.weight, torch.float32 --> F16, shape = {...}".
_TENSOR_LINE = re.compile(rb"--> \w+, shape = ")
_ERROR_LINE = re.compile(r"^(ERROR:[\w.-]+:|\w*(Error|Exception): )(.+)$")
# The architectures whose LoRA adapters can be converted for a GGUF base: the base's
# Hugging Face config is written back from its GGUF metadata (the converter needs it).
LORA_BASES = {"llama": "LlamaForCausalLM"}
_HF_KEYS = {  # Hugging Face config key: GGUF metadata key below the architecture
    "num_hidden_layers": "block_count", "num_attention_heads": "attention.head_count",
    "num_key_value_heads": "attention.head_count_kv", "hidden_size": "embedding_length",
    "intermediate_size": "feed_forward_length", "max_position_embeddings": "context_length",
    "rms_norm_eps": "attention.layer_norm_rms_epsilon", "rope_theta": "rope.freq_base",
}


class ConverterUnavailable(PastureError):
    """The converters cannot run on this server (500: not the request's fault)."""


def check_available() -> None:
    """ConverterUnavailable, saying what to install, if the converters' packages are not
    all installed."""
    if missing := [name for name in _NEEDED if importlib.util.find_spec(name) is None]:
        raise ConverterUnavailable(
            "converting Safetensors models needs the converter's packages "
            f"({', '.join(missing)} missing): pip install 'pasture[convert]'")


def source_path(cache: Path) -> Path:
    """Where the installed engine's converters are (or will be) unpacked under `cache`."""
    return cache / ".converter" / importlib.metadata.version("xllamacpp")


def prepare(cache: Path, progress: Callable[[str, int | None], None]) -> Path:
    """The converters of the installed engine's release, unpacked from its source archive
    once (downloaded into `cache`/.cache as `pasture engine build` does; blocking)."""
    check_available()
    target = source_path(cache)
    if (target / "convert_hf_to_gguf.py").is_file():
        return target
    archive = fetch_source(target.name, cache / ".cache", progress)
    progress("unpacking llama.cpp's converters (once)", None)
    prefix = f"xllamacpp-{target.name}/thirdparty/llama.cpp/"
    temp = target.with_name(f".tmp-{secrets.token_hex(8)}")  # unpacks may race
    with tarfile.open(archive) as tar:
        members = []
        for member in tar.getmembers():
            if member.name.startswith(prefix) and \
                    member.name[len(prefix):].startswith(_MEMBERS):
                member.name = member.name[len(prefix):]
                members.append(member)
        tar.extractall(temp, members=members, filter="data")
    if not (temp / "convert_hf_to_gguf.py").is_file():
        shutil.rmtree(temp, ignore_errors=True)
        raise ConverterUnavailable(f"the xllamacpp {target.name} source has no converter")
    try:
        os.replace(temp, target)
    except OSError:  # another request unpacked it first
        shutil.rmtree(temp, ignore_errors=True)
    return target


def check_lora_base(architecture: str | None) -> None:
    """A 400 unless a LoRA adapter for a model of `architecture` can be converted."""
    if architecture not in LORA_BASES:
        raise BadRequestError(
            f"converting a LoRA adapter for the {architecture!r} architecture is not "
            f"supported (supported: {', '.join(LORA_BASES)}); convert it to GGUF with "
            "llama.cpp's convert_lora_to_gguf.py and use that file")


def lora_base_config(info: GGUFInfo) -> dict[str, Any]:
    """The Hugging Face `config.json` of a base model, from its GGUF header: what the
    LoRA converter reads of the base (its class, layer count and attention shape)."""
    arch, metadata = info.architecture, info.metadata
    check_lora_base(arch)
    assert arch is not None
    config: dict[str, Any] = {"architectures": [LORA_BASES[arch]], "model_type": arch}
    for hf_key, gguf_key in _HF_KEYS.items():
        if (value := metadata.get(f"{arch}.{gguf_key}")) is not None:
            config[hf_key] = value
    if info.vocab_size is not None:
        config["vocab_size"] = info.vocab_size
    return config


async def convert(converters: Path, kind: str, source: Path, target: Path, *,
                  base: Path | None, max_output: int, memory_limit: int | None,
                  timeout: float) -> AsyncIterator[int]:
    """Convert the Hugging Face directory `source` (`kind` "model") or PEFT adapter
    directory (`kind` "lora", for the GGUF model `base`) to the GGUF file `target`,
    yielding the count of tensors written so far. BadRequestError with the converter's
    own message if it refuses the input; closing the iterator early kills the child."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "TQDM_DISABLE": "1"}
    env.pop("NO_LOCAL_GGUF", None)  # the converters' own gguf-py, not PyPI's
    lines = worker.stderr_lines(
        [sys.executable, "-m", "pasture.engines.convert_main", str(converters), kind,
         str(source), str(target), str(max_output), str(base or "")],
        memory_limit=memory_limit, what="converting", env=env, timeout=timeout)
    written = 0
    try:
        async with contextlib.aclosing(lines):  # leaving early kills the child
            async for line in lines:
                if _TENSOR_LINE.search(line):
                    written += 1
                    yield written
    except worker.WorkerExited as exc:
        if exc.code < 0:  # a signal: a crash, or past its output cap (SIGXFSZ)
            raise RunnerError("the converter stopped unexpectedly "
                              f"(signal {-exc.code})") from None
        raise BadRequestError("llama.cpp's converter could not convert this "
                              + ("adapter" if kind == "lora" else "model")
                              + (f": {without_paths(why)}" if (why := _reason(exc.tail)) else "")
                              ) from None


def _reason(tail: list[str]) -> str | None:
    """The converter's own last error line (a log line or an exception's), if any."""
    for line in reversed(tail):
        if found := _ERROR_LINE.match(line.strip()):
            return found.group(3).strip()
    return None
