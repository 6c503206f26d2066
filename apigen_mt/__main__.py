"""``python -m apigen_mt``: the ``apigen-mt`` command."""

import sys

from apigen_mt.cli import main

sys.exit(main())
