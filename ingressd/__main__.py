"""``python -m ingressd``."""

import sys

from .cli import main

sys.exit(main())
