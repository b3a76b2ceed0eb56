"""Folder locks: one process at a time writes a run folder; stale locks are taken over.

``with folder_lock(out_dir, "pansim train"):`` creates ``out_dir/.pansim.lock``
with ``O_CREAT | O_EXCL`` (atomic on local file systems) holding the owner's
pid, host, command and start time, and removes it on leaving the block. A
second process meets the file and raises :class:`FolderLockedError` naming the
owner. A lock whose owner is gone (same host, pid no longer alive: a run
killed with ``kill -9``) is stale: it is removed and taken over, with a note in
the error-free path. Locks of other hosts are never taken over.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from pansim._io import pid_alive as _alive

LOCK_NAME = ".pansim.lock"


class FolderLockedError(RuntimeError):
    """The folder is in use by another live process (the message names it)."""


def _owner(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _stale(owner: dict) -> bool:
    pid = owner.get("pid")
    if owner.get("host") != socket.gethostname() or not isinstance(pid, int):
        return not owner  # an empty or unreadable lock (killed while writing it) is stale
    return pid != os.getpid() and not _alive(pid)


def acquire(folder: str | os.PathLike, command: str) -> Path:
    """Create the lock file of ``folder`` (created if missing); return its path.

    Raises
    ------
    FolderLockedError
        When another live process holds the lock.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _owner(path)
            if _stale(owner):
                path.unlink(missing_ok=True)
                continue
            raise FolderLockedError(
                f"{folder} is in use by {owner.get('command', 'another run')} "
                f"(pid {owner.get('pid')} on {owner.get('host')}, started "
                f"{owner.get('started')}); wait for it, choose another folder, or delete "
                f"{path} if that process is gone"
            ) from None
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(record))
            handle.flush()
            os.fsync(handle.fileno())
        return path
    raise FolderLockedError(f"could not take the lock {path} (it keeps reappearing)")


def release(path: Path) -> None:
    """Remove the lock at ``path`` if this process holds it."""
    if _owner(path).get("pid") == os.getpid():
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, command: str, enabled: bool = True) -> Iterator[None]:
    """Hold ``folder``'s lock inside the block (nothing when ``enabled`` is False)."""
    if not enabled:
        yield
        return
    path = acquire(folder, command)
    try:
        yield
    finally:
        release(path)
