"""Golden energies, forces and stresses of every shipped model (writer and reader).

``python tests/reliability/golden_shipped.py`` writes ``shipped_golden.json``
beside this file: for each registered model, its results on the first
structure of its system's test split. The committed values were written from
the model files as they were before the training-domain statistics were added
to their metadata (commit 7fbfc84's files), so the test pins that adding
metadata left every weight, and so every number, as it was.
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
from ase.io import read

import pansim.pretrained as pre

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GOLDEN = HERE / "shipped_golden.json"


def first_test_structure(name: str):
    """First structure of the test split of ``name``'s system."""
    system = pre.model_entry(name)["system"]
    folder = ROOT / "data" / system
    path = next(p for p in (folder / "test.extxyz", folder / "test.xyz") if p.exists())
    return read(path, index=0)


def tensor_sha256(name: str) -> str:
    """Hash of the weights alone (names, dtypes, shapes, bytes) of ``name``'s file."""
    from pansim.model_io import _content_hash, read_model_file

    _, _, tensors = read_model_file(pre.get_model_path(name))
    return _content_hash("", "", tensors)


def evaluate(name: str) -> dict:
    from pansim import PANCalculator

    atoms = first_test_structure(name)
    atoms.calc = PANCalculator(model=name, keep_memory=False, check_domain=False)
    out = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces().tolist()}
    if all(atoms.pbc):
        out["stress"] = atoms.get_stress().tolist()
    return out


def main() -> int:
    warnings.simplefilter("ignore")
    golden = {
        name: {**evaluate(name), "tensor_sha256": tensor_sha256(name)} for name in pre.list_models()
    }
    GOLDEN.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {GOLDEN} ({len(golden)} models)")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=17)
    sys.exit(main())
