"""Files below the models directory, reached without following symbolic links.

Digests and names are validated before they become paths, but a link planted inside
the store (a blob pointing at `~/.ssh/id_rsa`, a namespace directory pointing at
`/etc`) would still let a request read or write outside it. So every component below
the models directory is opened relative to its parent's descriptor with `O_NOFOLLOW`:
a link anywhere on the way is refused (StoreLinkError), and a rename between the check
and the open cannot redirect it. The models directory itself is the user's choice and
may be a link.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from pasture.errors import BadRequestError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


class StoreLinkError(BadRequestError):
    """A symbolic link inside the models directory: refused, never followed (400)."""

    def __init__(self, parts: Sequence[str]) -> None:
        # Relative to the models directory: error bodies carry no server paths.
        super().__init__(f"refusing to follow the symbolic link {'/'.join(parts)!r} "
                         "in the models directory")


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def lstat_below(root: Path, parts: Sequence[str]) -> os.stat_result | None:
    """The status of `root/parts…` itself; None if a component is missing. StoreLinkError
    if any component below `root` is a link (cheap: one lstat a component)."""
    path = Path(root)
    result = None
    for index, part in enumerate(parts):
        path = path / part
        try:
            result = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(result.st_mode):
            raise StoreLinkError(parts[: index + 1])
    return result


@contextlib.contextmanager
def dir_below(root: Path, parts: Sequence[str], *, create: bool = False) -> Iterator[int]:
    """A descriptor of the directory `root/parts…`, closed on leaving, each component
    opened with O_NOFOLLOW below its parent; with `create`, missing directories are made.
    FileNotFoundError if one is missing (and not created)."""
    if create:
        Path(root).mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for index, part in enumerate(parts):
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(fd, part):
                    raise StoreLinkError(parts[: index + 1]) from None
                raise
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def open_below(root: Path, parts: Sequence[str]) -> BinaryIO:
    """The regular file `root/parts…` open for reading; StoreLinkError for a link,
    FileNotFoundError if absent or not a regular file."""
    with dir_below(root, parts[:-1]) as dir_fd:
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StoreLinkError(parts) from None
            raise
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # a FIFO would block forever
        f.close()
        raise FileNotFoundError(errno.ENOENT, "not a regular file")
    return f


def read_below(root: Path, parts: Sequence[str], limit: int) -> bytes:
    """Up to `limit + 1` bytes of the regular file `root/parts…` (the caller decides what
    more than `limit` means), opened as `open_below` does."""
    with open_below(root, parts) as f:
        return f.read(limit + 1)
