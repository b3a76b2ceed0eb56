"""``pansim`` CLI with the test stand-ins installed: ``torchrun ... _launch.py train CFG``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _standin  # noqa: E402

_standin.install()

from pansim.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
