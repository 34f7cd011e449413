"""`pasture run MODEL [PROMPT]`: make sure the model is there, then answer once or chat.

As in Ollama: a missing model is pulled first; piped stdin is put before the prompt
(or is the prompt); without a terminal the answer is given once and the command ends.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from rich.console import Console

from pasture.api.ollama import Message, ShowResponse
from pasture.cli import transfer
from pasture.cli.chat import Session, stream_answer
from pasture.client import Client, ResponseError


def build_prompt(words: list[str], stdin: TextIO) -> tuple[str | None, bool]:
    """The prompt from the arguments and piped stdin, and whether to answer just once."""
    prompt = " ".join(words) if words else None
    if stdin.isatty():
        return prompt, prompt is not None
    piped = stdin.read()
    if prompt is None:
        return piped, True
    return (f"{piped}\n\n{prompt}" if piped else prompt), True


def ensure_model(client: Client, model: str, insecure: bool = False) -> ShowResponse:
    """The model's details, pulling it first if the server does not have it."""
    try:
        return client.show(model)
    except ResponseError as exc:
        if exc.status_code != 404:
            raise
    transfer.pull(client, model, insecure)
    return client.show(model)


def embed(client: Client, session: Session, prompt: str, out: TextIO) -> None:
    """Embedding models answer with the vector, one JSON array."""
    reply = client.embed(session.model, prompt, keep_alive=session.keep_alive)
    for vector in reply.embeddings:
        out.write(json.dumps(vector) + "\n")


def preload(client: Client, session: Session) -> None:
    """Load the model before the first prompt (an empty chat), with a spinner."""
    with Console(stderr=True).status(""):
        client.chat(session.model, messages=[], keep_alive=session.keep_alive)


def run(client: Client, session: Session, words: list[str], insecure: bool = False) -> None:
    info = ensure_model(client, session.model, insecure)
    prompt, once = build_prompt(words, sys.stdin)
    embedding_only = "embedding" in info.capabilities and "completion" not in info.capabilities
    if embedding_only:
        if prompt is None:
            raise ValueError("embedding models require input text; usage: pasture run MODEL TEXT")
        embed(client, session, prompt, sys.stdout)
        return
    if once and not prompt:  # nothing to ask: just load the model, as Ollama does
        client.chat(session.model, messages=[], keep_alive=session.keep_alive)
        return
    if once:
        messages = [Message(role="user", content=prompt or "")]
        if session.system:
            messages.insert(0, Message(role="system", content=session.system))
        stream_answer(client, session, messages)
        return
    from pasture.cli.repl import Repl

    preload(client, session)
    Repl(client, session).run()
