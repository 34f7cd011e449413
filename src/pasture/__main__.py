"""`python -m pasture …` is the same as the `pasture` command."""

import sys

from pasture.cli.main import main

sys.exit(main())
