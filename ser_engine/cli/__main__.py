"""``python -m ser_engine.cli``: the ``ser`` command line."""

import sys

from ser_engine.cli.main import main

sys.exit(main())
