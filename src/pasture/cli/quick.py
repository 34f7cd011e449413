"""`pasture list`, `ps` and `--version`, and the light client the frequent commands share.

People run these from shell prompts, editors and scripts many times a minute (issue 23),
so they, like `show` and `run`, talk through the light client (the standard library's
HTTP and plain JSON) and print with `render`: no third-party package. `pasture.cli.main`
declares them with the other commands.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from pasture import __version__
from pasture.cli import render

if TYPE_CHECKING:
    from pasture.client.light import LightClient


def light_client(timeout: float | None = None) -> LightClient:
    """The standard-library client: for the quick, frequent commands."""
    from pasture.client.light import LightClient

    return LightClient(timeout=timeout)


def print_reply(draw: Callable[[], str]) -> None:
    """Print what `draw` makes of a server's answer. The light client hands the CLI plain
    JSON, so an answer that lacks a field or holds the wrong type (another program on the
    port, an incompatible server) fails here: one `Error:` line that blames the answer,
    not a traceback."""
    try:
        text = draw()
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        detail = f"no field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValueError(f"unexpected answer from the server ({detail})") from None
    sys.stdout.write(text)


def list_models() -> None:
    """List models."""
    reply = light_client().list()
    print_reply(lambda: render.list_table(reply.get("models") or []))


def ps() -> None:
    """List running models."""
    reply = light_client().ps()
    print_reply(lambda: render.ps_table(reply.get("models") or []))


def version() -> None:
    """The server's version, and this client's where it differs or no server answers."""
    from pasture.client.errors import ResponseError

    try:
        reply = light_client(timeout=5).version()  # `version` is Ollama's; ours `pasture`
        server_version = reply.get("pasture") or reply["version"]
    except (OSError, ResponseError):
        print("Warning: could not connect to a running Pasture instance")
        print(f"Warning: client version is {__version__}")
    else:
        print(f"pasture version is {server_version}")
        if server_version != __version__:
            print(f"Warning: client version is {__version__}")
