"""`python -m pasture …` is the same as the `pasture` command."""

from pasture.cli.main import app

app()
