"""The narrow interface between the scheduler and a model runner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from pasture.errors import RunnerError

CRASH_MESSAGE = (
    "model runner has unexpectedly stopped, this may be due to resource limitations "
    "or an internal error, check pasture server logs for details"
)


class RunnerCrashed(RunnerError):
    """The runner process died or stopped answering while serving a request."""

    def __init__(self, message: str = CRASH_MESSAGE) -> None:
        super().__init__(message)


@dataclass(frozen=True)
class LoadSpec:
    """Everything that decides how a runner is started; two equal specs share a runner."""

    model_path: str
    num_ctx: int
    num_parallel: int = 1
    num_batch: int = 512
    num_gpu: int = 0
    num_thread: int = 0
    use_mmap: bool | None = None
    adapters: tuple[str, ...] = field(default_factory=tuple)
    flash_attention: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Runner(Protocol):
    """A loaded model that can complete prompts. Implementations must be safe to share
    between concurrent requests (the engine batches them across its slots)."""

    spec: LoadSpec

    @property
    def alive(self) -> bool:
        """False once the runner has exited or was closed."""
        ...

    def completion(self, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Stream llama-server `/completion` chunks for a prompt; the last has `stop: true`."""
        ...

    async def apply_template(self, messages: list[dict[str, Any]]) -> str:
        """Render chat messages with the model's own (GGUF) chat template."""
        ...

    async def tokenize(self, text: str) -> list[int]: ...

    async def detokenize(self, tokens: list[int]) -> str: ...

    async def close(self) -> None:
        """Stop the runner and free its memory."""
        ...
