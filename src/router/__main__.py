"""`python -m router` and the `router` script: the command line lives in `router.cli`."""

from __future__ import annotations

import sys

from router.cli.main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
