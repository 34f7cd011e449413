"""A model's own tokenizer, for `/api/tokenize` and `/api/detokenize` (beyond Ollama,
ollama/ollama#3582 and #12031).

The engine tokenizes as it does a prompt (special tokens written in the text are read as
such). Both calls hold the model's runner but none of its slots, so they never wait
behind generations. Inputs are bounded (a text's characters, a list's ids) so a request
cannot keep the engine busy for long, and ids outside the vocabulary are a 400 before
the engine sees them (it would look them up unchecked).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pasture import options as opts
from pasture.api.ollama import KeepAlive
from pasture.errors import BadRequestError
from pasture.runner.base import Runner
from pasture.server.pipeline.model import ResolvedModel
from pasture.server.state import ServerState

# A quarter of a million tokens at most either way: beyond any context, and small enough
# that the ids' JSON, which the event loop reads from the engine and writes to the client,
# costs it about 0.1 s (a million took 0.3 s, past the stall budget).
MAX_TOKENIZE_CHARACTERS = 1 << 20
MAX_DETOKENIZE_TOKENS = 1 << 18


async def tokenize(state: ServerState, model_name: str, text: str, *, add_special: bool,
                   keep_alive: KeepAlive = None) -> list[int]:
    """The token ids `model_name`'s tokenizer makes of `text`."""
    if len(text) > MAX_TOKENIZE_CHARACTERS:
        raise BadRequestError(f"content is too long to tokenize: {len(text)} characters "
                              f"(at most {MAX_TOKENIZE_CHARACTERS})")
    model = await state.models.resolve(model_name)
    async with runner_for(state, model, keep_alive) as runner:
        return await runner.tokenize(text, add_special)


async def detokenize(state: ServerState, model_name: str, tokens: list[int], *,
                     keep_alive: KeepAlive = None) -> str:
    """The text of `tokens` in `model_name`'s vocabulary; 400 for an id outside it."""
    if len(tokens) > MAX_DETOKENIZE_TOKENS:
        raise BadRequestError(f"too many tokens to detokenize: {len(tokens)} (at most "
                              f"{MAX_DETOKENIZE_TOKENS})")
    model = await state.models.resolve(model_name)
    size = model.info.vocab_size or 2**31  # unknown: the engine checks (as 32-bit ids)
    outside = next((token for token in tokens if not 0 <= token < size), None)
    if outside is not None:
        raise BadRequestError(f"token id {outside} is outside this model's vocabulary "
                              f"(0 to {size - 1})")
    async with runner_for(state, model, keep_alive) as runner:
        return await runner.detokenize(tokens)


@contextlib.asynccontextmanager
async def runner_for(state: ServerState, model: ResolvedModel, keep_alive: KeepAlive
                     ) -> AsyncIterator[Runner]:
    """`model`'s runner as its Modelfile loads it (shared with its generations), held
    without a slot."""
    spec = model.load_spec(opts.merge(model.local.params), state.settings)
    async with state.lease(model, spec, state.keep_alive(keep_alive), slot=False) as lease:
        yield lease.runner
