"""`python -m operator_cli`: the same as the `vss-restore` command."""

import sys

from operator_cli.cli import main

sys.exit(main())
