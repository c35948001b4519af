"""``python -m senselink_plus``: the same as the ``senselink-plus`` command."""

import sys

from ._cli import main

sys.exit(main())
