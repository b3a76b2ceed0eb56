"""Generated sections of hand-written Markdown files: replace the text between two markers.

The ablation and benchmark scripts write their tables into docs pages this way.
"""

from __future__ import annotations

import os
from pathlib import Path

from pansim.files import write_text_atomic


def replace_between_markers(path: str | os.PathLike, start: str, end: str, block: str) -> bool:
    """Replace the text of ``path`` from ``start`` to ``end`` (both included) with ``block``.

    For generated sections of hand-written files (the README's tables): ``block``
    brings its own marker lines. The file is rewritten atomically; without both
    markers it is left alone.

    Returns
    -------
    bool
        Whether ``path`` was rewritten.
    """
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    write_text_atomic(path, head + block + tail)
    return True
