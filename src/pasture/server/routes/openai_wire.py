"""What the OpenAI routes (chat completions, completions, responses) share: OpenAI's
defaults, tool calls both ways, logprobs and usage in OpenAI's shapes, error events."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from fastapi.responses import JSONResponse

from pasture.api import openai as oa
from pasture.errors import BadRequestError
from pasture.runner.base import TokenLogprob
from pasture.server.error_shapes import openai_error
from pasture.server.pipeline.generation import Finish
from pasture.server.streaming import event

# OpenAI's defaults, which Ollama applies in place of the model's when a field is absent.
OPENAI_DEFAULTS: dict[str, Any] = {"temperature": 1.0, "top_p": 1.0}


def dump(item: oa.WireModel) -> dict[str, Any]:
    """OpenAI objects keep their null fields; the SDK expects them present."""
    return item.model_dump(mode="json", by_alias=True)


def json_out(item: oa.WireModel) -> JSONResponse:
    return JSONResponse(dump(item))


def error_event(status: int, message: str) -> bytes:
    return event(openai_error(status, message))


def new_id(prefix: str) -> str:
    """A response id in the style of the API family (`chatcmpl-…`, `resp_…`)."""
    return prefix + secrets.token_hex(12)


def now() -> int:
    return int(time.time())


# OpenAI's reasoning efforts as Ollama's `think`, clamped to Ollama's tiers as Ollama does.
_EFFORTS: dict[str, bool | str] = {"none": False, "minimal": "low", "low": "low",
                                   "medium": "medium", "high": "high", "max": "max",
                                   "xhigh": "max", "ultra": "max"}


def think_from_effort(effort: str | None) -> bool | str | None:
    """`reasoning_effort` (or `reasoning.effort`) as `think`; None keeps the model's
    default (on for thinking models)."""
    if not effort:
        return None
    if effort not in _EFFORTS:
        raise BadRequestError(f'invalid reasoning value: "{effort}" (must be "minimal", "low", '
                              '"medium", "high", "xhigh", "ultra", "max", or "none")')
    return _EFFORTS[effort]


def ollama_tool_call(call: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI tool call (arguments as a JSON string) as Ollama's (an object)."""
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    arguments = function.get("arguments") or "{}"
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            raise BadRequestError("tool call arguments must be a JSON object") from None
    if not isinstance(arguments, dict):
        raise BadRequestError("tool call arguments must be a JSON object")
    return {"id": call.get("id"), "function": {"name": function.get("name", ""),
                                               "arguments": arguments}}


def openai_tool_call(call: dict[str, Any], streaming: bool = False) -> dict[str, Any]:
    """A parsed call in OpenAI's shape (arguments as a JSON string; deltas carry an index)."""
    function = call["function"]
    entry = {"id": call["id"], "type": "function",
             "function": {"name": function["name"], "arguments": json.dumps(function["arguments"])}}
    return {"index": function["index"], **entry} if streaming else entry


def logprob_entries(entries: list[TokenLogprob]) -> list[dict[str, Any]]:
    """Token logprobs as OpenAI's `logprobs.content` entries."""
    def entry(item: TokenLogprob) -> dict[str, Any]:
        return {"token": item.token, "logprob": item.logprob, "bytes": item.bytes}

    return [{**entry(item), "top_logprobs": [entry(alt) for alt in item.top]}
            for item in entries]


def openai_logprobs(entries: list[TokenLogprob]) -> dict[str, Any] | None:
    return {"content": logprob_entries(entries), "refusal": None} if entries else None


def usage(finish: Finish) -> oa.Usage:
    return oa.Usage(prompt_tokens=finish.prompt_eval_count, completion_tokens=finish.eval_count,
                    total_tokens=finish.prompt_eval_count + finish.eval_count,
                    prompt_tokens_details=oa.PromptTokensDetails(
                        cached_tokens=finish.cached_tokens),
                    truncated=finish.truncation and finish.truncation.wire(),
                    stats=finish.stats())
