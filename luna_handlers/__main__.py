"""``python -m luna_handlers`` runs the ``luna-handlers`` command."""

import sys

from luna_handlers.cli import main

sys.exit(main())
