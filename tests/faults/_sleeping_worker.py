"""A worker of the labelling protocol that never finishes (stands in for a long PySCF run)."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "pansim" / "data" / "workers"))
import worker_protocol  # noqa: E402


def run(spec, log):
    """Sleep (until killed)."""
    time.sleep(3600)
    return {"ok": True}


if __name__ == "__main__":
    sys.exit(worker_protocol.main(sys.argv, run))
