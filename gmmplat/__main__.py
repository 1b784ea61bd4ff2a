"""``python -m gmmplat VERB ...`` = ``gmmplat VERB ...``."""
import sys

from .cli import main

sys.exit(main())
