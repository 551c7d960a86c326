"""``python -m perceiverkit.cli``: the same as the ``perceiverkit`` command."""

import sys

from . import main

sys.exit(main())
