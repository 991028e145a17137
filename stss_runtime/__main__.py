"""``python -m stss_runtime VERB``: see :mod:`stss_runtime.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
