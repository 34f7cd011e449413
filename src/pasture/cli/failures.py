"""How every `pasture` command ends: its exit status, and one `Error:` line instead of a
traceback for an expected failure.

Every command runs through `exit_status` (`pasture.cli.parsing`), so all end the same
way: status 1 and `Error: <message>` on stderr for what the server, the network or the
user's input got wrong, 2 for a wrong command line (`fail(message, 2)`), 130 after
Ctrl+C, and a traceback only for a bug.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class Exit(Exception):
    """Stop the command with exit status `code`; whatever there was to say is said."""

    def __init__(self, code: int = 0) -> None:
        super().__init__(code)
        self.code = code


def fail(message: str, code: int = 1) -> Exit:
    """Show `Error: message` on stderr; raise what this returns."""
    print(f"Error: {message}", file=sys.stderr, flush=True)
    return Exit(code)


def exit_status(command: Callable[[], Any]) -> int:
    """Run `command` and say how it ended: 0, the code of an `Exit` it raised, 1 after an
    expected failure (shown as one `Error:` line), 130 after Ctrl+C. Anything else (a
    bug) goes on up."""
    try:
        command()
    except Exit as exc:
        return exc.code
    except KeyboardInterrupt:
        print(file=sys.stderr, flush=True)
        return 130
    except Exception as exc:
        message = failure_message(exc)
        if message is None:
            raise
        return fail(message).code
    return 0


def failure_message(exc: Exception) -> str | None:
    """The line to show for an expected failure; None for a bug, which keeps its traceback.

    The errors' modules are imported here, once something failed; httpx's errors are
    looked at only if httpx was loaded, as nothing else raises them. (The light client
    turns every transport failure into an `OSError`.)
    """
    from pasture.client.errors import ResponseError
    from pasture.errors import PastureError

    if isinstance(exc, ResponseError):
        return exc.error
    if isinstance(exc, PastureError):
        return exc.message
    if isinstance(exc, OSError | ValueError):  # ConnectionError: the server is not running
        return str(exc)
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(exc, httpx.HTTPError):
        return str(exc) or type(exc).__name__
    return None
