"""Atomic file writes: a temporary file in the same folder, then ``os.replace``.

A reader, or a run killed halfway, sees either the complete old file or the
complete new one, never part of a write. Every result file of the package is
written through these helpers. (``pansim/data/workers/worker_protocol.py``
keeps its own copy: it runs under the system Python, without pansim.)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to ``path`` that replaces ``path`` when the block succeeds.

    Parameters
    ----------
    path : str or PathLike
        The destination; missing parent folders are created.

    Yields
    ------
    Path
        A fresh name ``.<name>.<pid>.<random>.tmp`` in the same folder (not yet
        created: the writer creates it, with the usual permissions). Write it completely;
        on leaving the block it is renamed over ``path`` with ``os.replace``.

    Notes
    -----
    On any exception (``KeyboardInterrupt`` included) the temporary file is
    removed, ``path`` is left untouched and the exception propagates. The
    temporary name ends in ``.tmp``, not in ``path``'s suffix, so globs such as
    ``*.json`` never match a half-written file; writers that take the format
    from the file name (``Figure.savefig``) must be given it explicitly.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)
    # only a fresh name: whoever writes it creates the file, with the usual permissions
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_orphans(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files of ``path`` left by writers that were killed.

    A temporary name carries its writer's pid (``.<name>.<pid>.<random>.tmp``);
    those whose pid no longer runs are orphans of a killed write (``kill -9``
    skips the cleanup of :func:`atomic_path`). Called before every atomic write,
    so orphans last at most until the next write of the same file.

    Returns
    -------
    list of Path
        The files removed.
    """
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        parts = tmp.name[len(path.name) + 2 : -len(".tmp")].split(".")
        if len(parts) != 2 or not parts[0].isdigit():
            continue
        pid = int(parts[0])
        if pid != os.getpid() and not pid_alive(pid):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped."""
    import glob

    return glob.escape(name)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_text_atomic(path: str | os.PathLike, text: str | bytes) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file, fsync, ``os.replace``).

    Parameters
    ----------
    path : str or PathLike
        The destination; missing parent folders are created.
    text : str or bytes
        The complete new content, written as is (no newline is added); bytes are
        written in binary mode.

    Returns
    -------
    Path
        ``path``, with the usual permissions (umask). If anything fails the
        previous content of ``path`` survives.
    """
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb" if isinstance(text, bytes) else "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def write_json_atomic(
    path: str | os.PathLike, payload: Any, indent: int | None = None, **json_kwargs: Any
) -> Path:
    """Write ``payload`` as JSON to ``path`` atomically (see :func:`write_text_atomic`).

    Parameters
    ----------
    path : str or PathLike
        The destination; missing parent folders are created.
    payload : Any
        JSON-serialisable data; it is serialised before anything is written,
        so a ``TypeError`` leaves ``path`` untouched.
    indent : int, optional
        Passed to :func:`json.dumps`, as are ``json_kwargs`` (``sort_keys``,
        ``default``, ...). No trailing newline is written.

    Returns
    -------
    Path
        ``path``.
    """
    return write_text_atomic(path, json.dumps(payload, indent=indent, **json_kwargs))
