"""Add training-domain statistics to the shipped model files, weights untouched.

``python scripts/add_domain_stats.py`` reads each registered model, computes
:func:`pansim.domain.domain_statistics` of its system's training split
(``data/<system>/train.extxyz``, ``train.xyz`` for ag-emt) with the model's
elements and cutoff, and rewrites the file with ``metadata["domain"]`` set and
the hash recomputed. The tensors are written back byte for byte (the golden
test ``tests/reliability/test_shipped_golden.py`` checks their hash and the
numbers they give).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pansim.pretrained as pre
from pansim.domain import add_domain_to_file

ROOT = Path(__file__).resolve().parents[1]


def train_file(system: str) -> Path:
    """The training split of ``system``."""
    folder = ROOT / "data" / system
    return next(p for p in (folder / "train.extxyz", folder / "train.xyz") if p.exists())


def add_domain(name: str) -> dict:
    """Rewrite the file of model ``name`` with its training-domain statistics; return them."""
    return add_domain_to_file(pre.get_model_path(name), train_file(pre.model_entry(name)["system"]))


def main() -> int:
    """Add the statistics to every registered model."""
    for name in pre.list_models():
        stats = add_domain(name)
        print(name, stats["combinations"], stats["min_distance"], stats["coordination"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
