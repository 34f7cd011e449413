"""Log lines a flood of clients would repeat without end, one per kind per interval.

An attack of a thousand slow sockets produced a 242 MB log of `Too many open files`:
asyncio logs a failed `accept` with its traceback every second, and each dropped slow
client is a line of its own. `LogThrottle`, a filter on the server's log handler, lets
the first record of each kind through, holds back the rest for `interval` seconds, and
says how many it held back on the next one it lets through. The kinds are records the
edge marks with `extra={"throttle": kind}`; any record about running out of file
descriptors (shortened to one line, without the traceback); and asyncio's own errors, by
their first line: after a failed `accept`, CPython 3.11 schedules one retry per pending
connection (up to the listen backlog, 2048), and each can fail and log again.
"""

from __future__ import annotations

import errno
import logging
import math
import time

_FD_ERRNOS = (errno.EMFILE, errno.ENFILE)
_FD_MESSAGE = ("out of file descriptors (%s): new connections wait until some close; "
               "raise the open-file limit or lower PASTURE_MAX_CONNECTIONS")


class LogThrottle(logging.Filter):
    """At most one record of each kind every `interval` seconds (see the module docstring)."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = getattr(record, "throttle", None) or _fd_exhaustion(record)
        if kind is None and record.name == "asyncio":
            kind = "asyncio: " + _first_line(record)[:200]
        if kind is None:
            return True
        now = time.monotonic()
        if now - self._last.get(kind, -math.inf) < self.interval:
            self._held[kind] = self._held.get(kind, 0) + 1
            return False
        self._last[kind] = now
        if kind == "fd limit":
            record.msg, record.args = _FD_MESSAGE, (_first_line(record),)
            record.exc_info, record.exc_text = None, None
        held = self._held.pop(kind, 0)
        if held:
            record.msg = f"{record.getMessage()} ({held} more like this held back)"
            record.args = ()  # no %-formatting of the text as it now is
        return True


def _fd_exhaustion(record: logging.LogRecord) -> str | None:
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, OSError) and error.errno in _FD_ERRNOS:
        return "fd limit"
    return "fd limit" if "Too many open files" in _first_line(record) else None


def _first_line(record: logging.LogRecord) -> str:
    try:
        text = record.getMessage()
    except (TypeError, ValueError):
        text = str(record.msg)
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, OSError) and error.strerror:
        text = f"{text.splitlines()[0] if text else ''}: {error.strerror}"
    return text.splitlines()[0] if text else ""
