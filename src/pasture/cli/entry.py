"""The `pasture` command's entry point (`[project.scripts]` and `python -m pasture`).

`pasture list`, `ls`, `ps` and `--version` (`-v`) run from shell prompts, editors and
scripts many times a minute, and importing typer and click and building the command tree
cost them more than their own work (issue 23). So those exact command lines are
answered here, by the functions their typer commands run (`pasture.cli.quick`), ending
as those do (`pasture.cli.failures`); any other command line, one of these with more
arguments (`list --help`) included, goes to the typer app in `pasture.cli.main`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from pasture.cli import quick
from pasture.cli.failures import exit_status

QUICK: dict[tuple[str, ...], Callable[[], None]] = {
    ("list",): quick.list_models,
    ("ls",): quick.list_models,
    ("ps",): quick.ps,
    ("--version",): quick.version,
    ("-v",): quick.version,
}


def main() -> int:
    """Run the command line in `sys.argv`; return its exit status."""
    command = QUICK.get(tuple(sys.argv[1:]))
    if command is not None:
        return exit_status(command)
    from pasture.cli.main import app

    return app()  # click's standalone mode: exits with the command's status itself
