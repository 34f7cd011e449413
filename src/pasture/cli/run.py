"""`pasture run MODEL [PROMPT]`: make sure the model is there, then answer once or chat.

As in Ollama: a missing model is pulled first; piped stdin is put before the prompt
(or is the prompt); without a terminal the answer is given once and the command ends.

Everything but the pull goes through the light client, so a one-shot answer costs no
more start-up than `pasture list`; rich, prompt_toolkit and the full client are imported
only by the steps that draw a spinner, edit lines or show a download.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from pasture.cli.chat import Session, message, stream_answer
from pasture.client.errors import ResponseError
from pasture.client.light import LightClient


def build_prompt(words: list[str], stdin: TextIO) -> tuple[str | None, bool]:
    """The prompt from the arguments and piped stdin, and whether to answer just once."""
    prompt = " ".join(words) if words else None
    if stdin.isatty():
        return prompt, prompt is not None
    piped = stdin.read()
    if prompt is None:
        return piped, True
    return (f"{piped}\n\n{prompt}" if piped else prompt), True


def ensure_model(client: LightClient, model: str, insecure: bool = False) -> dict[str, Any]:
    """The model's details, pulling it first if the server does not have it."""
    try:
        return client.show(model)
    except ResponseError as exc:
        if exc.status_code != 404:
            raise
    from pasture.cli import transfer
    from pasture.client import Client

    with Client(client.url) as full:
        transfer.pull(full, model, insecure)
    return client.show(model)


def embed(client: LightClient, session: Session, prompt: str, out: TextIO) -> None:
    """Embedding models answer with the vector, one JSON array."""
    reply = client.embed(session.model, prompt, keep_alive=session.keep_alive)
    for vector in reply.get("embeddings") or []:
        out.write(json.dumps(vector) + "\n")


def preload(client: LightClient, session: Session) -> None:
    """Load the model before the first prompt (an empty chat), with a spinner."""
    from rich.console import Console

    with Console(stderr=True).status(""):
        client.chat(session.model, [], keep_alive=session.keep_alive)


def run(client: LightClient, session: Session, words: list[str], insecure: bool = False) -> None:
    info = ensure_model(client, session.model, insecure)
    prompt, once = build_prompt(words, sys.stdin)
    capabilities = info.get("capabilities") or []
    embedding_only = "embedding" in capabilities and "completion" not in capabilities
    if embedding_only:
        if prompt is None:
            raise ValueError("embedding models require input text; usage: pasture run MODEL TEXT")
        embed(client, session, prompt, sys.stdout)
        return
    if once and not prompt:  # nothing to ask: just load the model, as Ollama does
        client.chat(session.model, [], keep_alive=session.keep_alive)
        return
    if once:
        messages = [message("user", prompt or "")]
        if session.system:
            messages.insert(0, message("system", session.system))
        stream_answer(client, session, messages)
        return
    from pasture.cli.repl import Repl

    preload(client, session)
    Repl(client, session).run()
