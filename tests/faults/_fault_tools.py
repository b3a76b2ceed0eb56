"""Helpers of the fault-injection tests (a module name of its own: several test folders
have a ``conftest``)."""

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def temporary_files(folder: Path) -> list[Path]:
    """Temporary files of atomic writes left in ``folder`` (recursively)."""
    return sorted(p for p in Path(folder).rglob("*.tmp*"))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
