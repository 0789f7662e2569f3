"""``python -m chaos``: see chaos/runner.py."""

import sys

from chaos.runner import main

sys.exit(main())
