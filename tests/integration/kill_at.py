"""`pasture serve` that kills itself with SIGKILL at one exact point: a fault-test harness.

A kill -9 from outside lands wherever the server happens to be, so the moments that
matter (a layer complete but not yet renamed, the manifest's temp file written but not
in place) are hit only by luck. Here a Python audit hook watches the server's own file
operations and sends SIGKILL to its own process the first time one matches, before the
operation runs; what is on disk afterwards is exactly what a kill at that instant leaves.

    PASTURE_TEST_KILL_AT='os.rename:/blobs/sha256-' python tests/integration/kill_at.py

The variable is `<audit event>:<regex>`: `open` matches the path opened (built-in `open`
and `os.open`), `os.rename` the destination of `os.rename`/`os.replace`.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from typing import Any

_WATCHED_ARGUMENT = {"open": 0, "os.rename": 1}


def kill_at(event: str, pattern: str) -> None:
    """Install the hook: SIGKILL this process when `event` fires on a path matching."""
    index = _WATCHED_ARGUMENT[event]
    matcher = re.compile(pattern)

    def hook(name: str, args: tuple[Any, ...]) -> None:
        if name != event or not isinstance(args[index], str | bytes | os.PathLike):
            return
        if matcher.search(os.fsdecode(args[index])):
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)


if __name__ == "__main__":
    event, _, pattern = os.environ.pop("PASTURE_TEST_KILL_AT").partition(":")
    kill_at(event, pattern)
    from pasture.cli.main import app

    app(["serve"])
