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

import json
import sys
from pathlib import Path

from ase.io import read
from safetensors.torch import save

import pansim.pretrained as pre
from pansim._io import write_text_atomic
from pansim.domain import DOMAIN_KEY, domain_statistics
from pansim.graph import atoms_to_graph
from pansim.model_checks import element_numbers
from pansim.model_io import FORMAT, FORMAT_VERSION, _content_hash, read_model_file

ROOT = Path(__file__).resolve().parents[1]


def train_file(system: str) -> Path:
    """The training split of ``system``."""
    folder = ROOT / "data" / system
    return next(p for p in (folder / "train.extxyz", folder / "train.xyz") if p.exists())


def add_domain(name: str) -> dict:
    """Rewrite the file of model ``name`` with its training-domain statistics; return them."""
    path = pre.get_model_path(name)
    config, meta, tensors = read_model_file(path)
    numbers, r_max = element_numbers(config["elements"]), float(config["r_max"])
    structures = read(train_file(pre.model_entry(name)["system"]), index=":")
    graphs = [atoms_to_graph(a, numbers, r_max) for a in structures]
    meta[DOMAIN_KEY] = domain_statistics(graphs, [a.numbers for a in structures], r_max)
    c, m = json.dumps(config, sort_keys=True), json.dumps(meta, sort_keys=True)
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": c,
        "metadata": m,
        "sha256": _content_hash(c, m, tensors),
    }
    write_text_atomic(path, save(tensors, metadata=header))
    return meta[DOMAIN_KEY]


def main() -> int:
    """Add the statistics to every registered model."""
    for name in pre.list_models():
        stats = add_domain(name)
        print(name, stats["combinations"], stats["min_distance"], stats["coordination"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
