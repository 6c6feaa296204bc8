"""``python -m api_client.runner run|ablate|report ...`` (the same commands as ``pulid-studio``)."""

import sys

from .commands import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
