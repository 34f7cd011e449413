"""Ollama's model options: their names, types, defaults and bounds.

Options arrive from three places, merged in this order (later wins): Pasture's defaults,
the model's Modelfile `PARAMETER`s, and the request's `options`. Load-time options
(`num_ctx`, `num_gpu`, …) decide how a runner is started; the rest go with each request
(`runner.llama_server.sampling_fields` writes them for the engine).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from pasture.errors import BadRequestError

log = logging.getLogger(__name__)

# Draftless speculation: "ngram" is llama.cpp's ngram-simple; the others name its kinds.
SPECULATIVE_KINDS = ("off", "ngram", "ngram_simple", "ngram_map_k", "ngram_mod")
# Off by default: on a CPU a rejected draft costs a batch, and at Ollama's sampling free
# answers lost up to 16 % (Gemma 3, ngram_mod; bench/RESULTS.md), past the 3 % a default
# may cost. Echo-like tasks gain 1.2-2.2x: opt in per model.
SPECULATIVE_DEFAULT = "off"
SPECULATIVE_ENGINE_KINDS = {"ngram": "ngram_simple", "ngram_simple": "ngram_simple",
                            "ngram_map_k": "ngram_map_k", "ngram_mod": "ngram_mod"}

# llama.cpp reads these counts as 32-bit ints: a larger value would wrap, so it is refused.
INT32_MAX = (1 << 31) - 1


# `think`'s levels, as Ollama's `api.ThinkValue` accepts them (`max` since #15787).
THINK_LEVELS = ("low", "medium", "high", "max")

@dataclass(frozen=True)
class OptionSpec:
    """One option: its JSON type, default and bounds (or, for a string, its choices)."""

    type: type
    default: Any
    low: float | None = None  # smallest allowed value, if bounded
    high: float | None = None  # largest allowed value, if bounded
    choices: tuple[str, ...] = ()  # the values a string option may take


# Per-request sampling options (sent with every completion).
SAMPLING: dict[str, OptionSpec] = {
    "num_keep": OptionSpec(int, 4, low=-1, high=INT32_MAX),
    "seed": OptionSpec(int, -1),
    "num_predict": OptionSpec(int, -1, low=-2, high=INT32_MAX),
    "top_k": OptionSpec(int, 40, low=0, high=INT32_MAX),
    "top_p": OptionSpec(float, 0.9, low=0, high=1),
    "min_p": OptionSpec(float, 0.0, low=0, high=1),
    "typical_p": OptionSpec(float, 1.0, low=0, high=1),
    "repeat_last_n": OptionSpec(int, 64, low=-1, high=INT32_MAX),
    "temperature": OptionSpec(float, 0.8, low=0),
    "repeat_penalty": OptionSpec(float, 1.0, low=0),
    "presence_penalty": OptionSpec(float, 0.0),
    "frequency_penalty": OptionSpec(float, 0.0),
    "stop": OptionSpec(list, None),
}

# Load-time options: changing one means starting the runner again.
LOAD: dict[str, OptionSpec] = {
    # num_ctx None: the server's context length setting.
    "num_ctx": OptionSpec(int, None, low=1, high=1 << 22),
    "num_batch": OptionSpec(int, 512, low=1, high=1 << 16),
    "num_gpu": OptionSpec(int, -1, low=-1),
    "main_gpu": OptionSpec(int, None, low=0),
    "use_mmap": OptionSpec(bool, None),
    "num_thread": OptionSpec(int, 0, low=0, high=1024),
    # Tokens a DRAFT model proposes per step (llama.cpp's draft n_max); unset: 4 for a
    # model with a DRAFT, and 0 turns speculative decoding off, as in Ollama.
    "draft_num_predict": OptionSpec(int, None, low=0, high=256),
    # Speculative decoding with no draft model: the engine drafts tokens by looking the
    # last few up in the prompt and the text so far (llama.cpp's ngram speculation), so
    # answers that repeat their input (edits, rewrites, quotes, extraction) decode in
    # bigger steps. Greedy answers are unchanged. "ngram" is llama.cpp's ngram-simple
    # (bench/bench_speculative.py); a DRAFT model, when the model has one, wins.
    "speculative": OptionSpec(str, SPECULATIVE_DEFAULT, choices=SPECULATIVE_KINDS),
}

ALL: dict[str, OptionSpec] = {**SAMPLING, **LOAD}

# Request-only option (not a Modelfile PARAMETER): the scale of each LoRA ADAPTER for this
# request, `[{"id": 0 | "name": "sql", "scale": 0.5}, ...]`; adapters not listed get 0.
LORA = "lora"
_LORA_SHAPE = 'option "lora" must be an array of objects with "id" or "name", and "scale"'

# Options Ollama dropped: a Modelfile may still name them; they are accepted and ignored.
RETIRED = frozenset(
    {
        "penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock",
        "mirostat", "mirostat_tau", "mirostat_eta", "tfs_z", "numa",
    }
)

_TYPE_NAMES = {int: "integer", float: "float", bool: "boolean", list: "array of strings",
               str: "string"}


def _coerce(name: str, value: Any) -> Any:
    """Check one option's JSON value; floats given for integers are truncated, as in Ollama."""
    kind = ALL[name].type
    bad = BadRequestError(f'option "{name}" must be of type {_TYPE_NAMES[kind]}')
    if kind is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if kind is str:
        if not isinstance(value, str):
            raise bad
        return _one_of(name, value)
    if kind is list:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad
        return list(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequestError(f'option "{name}" must be a finite number')
    return _in_range(name, int(value) if kind is int else float(value))


def _one_of(name: str, value: str) -> str:
    """The value (lowercased) if it is one of the option's choices, else a 400 listing them."""
    lowered = value.strip().lower()
    choices = ALL[name].choices
    if lowered not in choices:
        raise BadRequestError(f'option "{name}" must be one of {", ".join(choices)}')
    return lowered


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _in_range(name: str, value: float) -> Any:
    """The value if it lies within the option's bounds, else a 400 naming them."""
    spec = ALL[name]
    too_low = spec.low is not None and value < spec.low
    too_high = spec.high is not None and value > spec.high
    if too_low or too_high:
        if spec.high is None:
            bounds = f"at least {_number(spec.low)}"
        elif spec.low is None:
            bounds = f"at most {_number(spec.high)}"
        else:
            bounds = f"between {_number(spec.low)} and {_number(spec.high)}"
        raise BadRequestError(f'option "{name}" must be {bounds}')
    return value


def validate(options: dict[str, Any] | None) -> dict[str, Any]:
    """Type-checked copy of request options; unknown names are dropped with a warning."""
    checked: dict[str, Any] = {}
    for name, value in (options or {}).items():
        if name == LORA and value is not None:
            checked[name] = _lora(value)
            continue
        if name not in ALL:
            if name not in RETIRED:
                log.warning("invalid option provided: %s", name)
            continue
        if value is None:
            continue
        checked[name] = _coerce(name, value)
    return checked


def _lora(value: Any) -> list[dict[str, Any]]:
    """The `lora` option checked: each entry names one adapter, by position (`id`) or
    by name, with a finite `scale`; which adapters exist is the model's to check."""
    if not isinstance(value, list):
        raise BadRequestError(_LORA_SHAPE)
    entries = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) - {"id", "name", "scale"} \
                or ("id" in entry) == ("name" in entry):
            raise BadRequestError(_LORA_SHAPE)
        scale = entry.get("scale")
        if isinstance(scale, bool) or not isinstance(scale, int | float) \
                or not math.isfinite(scale):
            raise BadRequestError('option "lora": each "scale" must be a finite number')
        key = entry.get("id", entry.get("name"))
        if "id" in entry and (isinstance(key, bool) or not isinstance(key, int) or key < 0):
            raise BadRequestError('option "lora": each "id" must be an integer, 0 or more')
        if "name" in entry and not isinstance(key, str):
            raise BadRequestError('option "lora": each "name" must be a string')
        entries.append({"id" if "id" in entry else "name": key, "scale": float(scale)})
    return entries


def merge(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Options from all layers, later layers winning, on top of the defaults."""
    merged = {name: spec.default for name, spec in ALL.items() if spec.default is not None}
    for layer in layers:
        merged.update(layer or {})
    return merged


def parse_parameter(name: str, raw: str) -> Any:
    """The typed value of a Modelfile `PARAMETER name raw` line (strings in, JSON out)."""
    key = name.lower()
    if key in RETIRED:
        log.warning("parameter %s is no longer supported and is ignored", key)
        return None
    if key not in ALL:
        raise BadRequestError(f'unknown parameter "{name}"')
    kind = ALL[key].type
    text = raw.strip()
    try:
        if kind is list:  # kept as written, as Ollama does: a stop may be " User:" or "\n"
            return raw
        if kind is bool:
            lowered = text.lower()
            if lowered in ("1", "t", "true"):
                return True
            if lowered in ("0", "f", "false"):
                return False
            raise ValueError(text)
        if kind is str:
            return _one_of(key, text)
        if "_" in text or not text.isascii():  # Python reads 1_000 and other scripts'
            raise ValueError(text)              # digits; Go's (Ollama's) parser does not
        if kind is int:
            return _in_range(key, int(text))
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(text)
        return _in_range(key, value)
    except ValueError:
        raise BadRequestError(
            f'invalid value "{raw}" for parameter "{name}": must be of type {_TYPE_NAMES[kind]}'
        ) from None


def add_parameter(params: dict[str, Any], name: str, raw: str) -> None:
    """Add one Modelfile `PARAMETER name raw` to `params`; repeated `stop` values accumulate
    and retired options are ignored."""
    value = parse_parameter(name, raw)
    if value is None:
        return
    key = name.lower()
    if ALL[key].type is list:
        params.setdefault(key, []).append(value)
    else:
        params[key] = value
