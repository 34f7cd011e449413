"""Live pull, push and create progress, drawn with rich.

Kept apart from `render` (plain text formatting) so that commands that only print tables,
such as `pasture list`, never import rich.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _WhenSized(ProgressColumn):
    """Shows the wrapped column only for tasks with a size (a bar), not for status lines."""

    def __init__(self, column: ProgressColumn) -> None:
        super().__init__()
        self.column = column

    def render(self, task: Task) -> Any:
        if task.total is None or task.fields.get("status_line"):
            return Text("")
        return self.column.render(task)


class ProgressView:
    """Ollama-style progress on stderr: a line per status, a bar per digest.

    Feed it `(status, digest, total, completed)` as they arrive from a pull, push or
    create stream. On a terminal, statuses with a size get a live bar; otherwise (logs,
    pipes) each status is printed once, as a plain line.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.live = self.console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            _WhenSized(TextColumn("{task.percentage:>3.0f}%")),
            _WhenSized(BarColumn(bar_width=40)),
            _WhenSized(DownloadColumn()),
            _WhenSized(TimeRemainingColumn()),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, TaskID | None] = {}
        self.started = False

    def __enter__(self) -> ProgressView:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.started:
            self.progress.stop()

    def update(self, status: str, digest: str | None = None, total: int | None = None,
               completed: int | None = None) -> None:
        sized = bool(digest and total)
        key = f"{'bar' if sized else 'line'}:{status}"
        if not self.live:
            if key not in self.tasks:
                self.tasks[key] = None
                self.console.print(status, soft_wrap=True)
            return
        # Started on the first status, so an early error leaves no empty display behind.
        if not self.started:
            self.progress.start()
            self.started = True
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(
                status, total=total if sized else None, status_line=not sized
            )
        task = self.tasks[key]
        if sized and task is not None:
            self.progress.update(task, total=total, completed=completed or 0)
