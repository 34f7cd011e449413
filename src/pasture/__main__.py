"""`python -m pasture …` is the same as the `pasture` command."""

import sys

from pasture.cli.entry import main

sys.exit(main())
