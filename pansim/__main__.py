"""``python -m pansim`` runs the command-line interface (used by ``torchrun -m pansim``)."""

from pansim.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
