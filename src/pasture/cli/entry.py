"""The `pasture` console script's entry point (`[project.scripts]`), kept under this name
for scripts already installed: the command line itself is `pasture.cli.main`."""

from pasture.cli.main import main

__all__ = ["main"]
