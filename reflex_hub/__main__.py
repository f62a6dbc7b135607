"""``python -m reflex_hub``: the same as the ``reflex-hub`` command."""

from __future__ import annotations

import sys

from reflex_hub.cli import main

sys.exit(main())
