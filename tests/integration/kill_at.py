"""`pasture serve` that kills itself with SIGKILL at one exact point: a fault-test harness.

A kill -9 from outside lands wherever the server happens to be, so the moments that
matter (a layer complete but not yet renamed, the manifest's temp file written but not
in place) are hit only by luck. Here a Python audit hook watches the server's own file
operations and sends SIGKILL to its own process the first time one matches, before the
operation runs; what is on disk afterwards is exactly what a kill at that instant leaves.

    PASTURE_TEST_KILL_AT='os.rename:/blobs/sha256-' python tests/integration/kill_at.py

The variable is `<audit event>:<regex>`: `open` matches the path opened (built-in `open`
and `os.open`), `os.rename` the destination of `os.rename`/`os.replace`; a destination
given relative to a directory descriptor (`dst_dir_fd`, as the store writes manifests) is
matched as its full path. `os.rename+` kills just after the rename instead of before it
(the hook performs it first): the state a kill between a rename and the directory's
fsync leaves.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from typing import Any

_WATCHED_ARGUMENT = {"open": 0, "os.rename": 1}
_DIR_FD_ARGUMENT = {"os.rename": 3}  # os.rename/os.replace audit (src, dst, src_fd, dst_fd)


def kill_at(event: str, pattern: str) -> None:
    """Install the hook: SIGKILL this process when `event` fires on a path matching (after
    the rename itself for `os.rename+`)."""
    after = event.endswith("+")
    event = event.rstrip("+")
    index = _WATCHED_ARGUMENT[event]
    matcher = re.compile(pattern)
    renaming = False  # the hook's own rename (for `os.rename+`) fires the hook again

    def hook(name: str, args: tuple[Any, ...]) -> None:
        nonlocal renaming
        if renaming or name != event or not isinstance(args[index], str | bytes | os.PathLike):
            return
        path = os.fsdecode(args[index])
        dir_fd = args[_DIR_FD_ARGUMENT[event]] if event in _DIR_FD_ARGUMENT else None
        if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(path):
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        if matcher.search(path):
            if after:
                renaming = True
                os.rename(args[0], args[1], src_dir_fd=args[2], dst_dir_fd=args[3])
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)


if __name__ == "__main__":
    event, _, pattern = os.environ.pop("PASTURE_TEST_KILL_AT").partition(":")
    kill_at(event, pattern)
    from pasture.cli.main import main

    sys.exit(main(["serve"]))
