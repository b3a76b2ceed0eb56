"""Atomic file writes (public): a reader never sees half a file, a killed run leaves none.

``atomic_path(path)`` yields a temporary path in the same folder and moves it
over ``path`` when the block succeeds; ``write_text_atomic`` and
``write_json_atomic`` write a whole file that way. Use these for every result
file that another process or a resumed run may read.
"""

from pansim._io import atomic_path, write_json_atomic, write_text_atomic

__all__ = ["atomic_path", "write_json_atomic", "write_text_atomic"]
