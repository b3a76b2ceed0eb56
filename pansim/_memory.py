"""Keep freed memory in the process: glibc malloc without mmap'd blocks and heap trimming.

Why: a force evaluation allocates (and frees) many tensors of tens of MB to GB
(edge features, tensor products, their gradients). glibc serves every block
above its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and returns it
with ``munmap`` when freed, so each such tensor is faulted in and zeroed by the
kernel page by page, every call. With mmap off and trimming off the blocks come
from the heap and are reused call after call.

The price: memory freed after a call stays with the process (reusable by any
later allocation, not given back to the system), and the heap's peak is
somewhat higher (fragmentation: torch asks for 64-byte aligned blocks, so reuse
needs neighbouring free blocks). For repeated calls (MD, relaxations, phonons)
it is what the next call needs anyway. Because it changes the whole process it
is opt-in: ``PANCalculator(keep_memory=True)`` or a call of
:func:`keep_freed_memory`; the ``pansim`` command line enables it for its own
process. Measurements: docs/memory.md.

Only glibc (``mallopt``); elsewhere (musl, macOS, Windows) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Switch glibc malloc to heap-only, never-trimmed allocation (once); whether it applied.

    ``mallopt(M_MMAP_MAX, 0)`` (no mmap'd blocks) and ``mallopt(M_TRIM_THRESHOLD, -1)``
    (never give the top of the heap back; ``-1`` disables trimming, see ``mallopt(3)``).
    Process-wide and idempotent; what the environment ``MALLOC_MMAP_MAX_=0`` with a
    huge ``MALLOC_TRIM_THRESHOLD_`` does at start-up, decided at run time instead.
    """
    global _done
    if _done is not None:
        return _done
    _done = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        version = libc.gnu_get_libc_version  # glibc only
        version.restype = ctypes.c_char_p
        version()
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, -1))
    return _done
