"""``python -m ats.cli``: the ``ats`` command."""

import sys

from ats.cli import main

sys.exit(main())
