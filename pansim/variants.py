"""The ablation variants of every pansim backbone, defined once (docs/spec.md §1.3).

Torch-free, so that the registry and command lines can check a variant name
without importing torch.
"""

from __future__ import annotations

#: the backbone alone, with PAN, with PGS, with both
VARIANTS: tuple[str, ...] = ("baseline", "pan", "pgs", "pan+pgs")
