"""Write the golden values of every shipped model: ``tests/golden/shipped_models.json``.

For each model of ``pansim/pretrained/registry.json`` the energy, forces and
(for periodic cells) stress of one fixed small structure of its system,
computed in float64 on the CPU. ``tests/test_golden.py`` checks that the
models still give these numbers (to 1e-10), so that moving code around never
changes what a shipped model computes. Rerun this script only when a change
of the numbers is intended, and say why in the commit.

The structures are stored in the JSON as well (numbers, positions, cell,
pbc), so the test needs neither the random generator nor the data files:

* a crystal: its conventional cubic cell (``System.conventional`` of
  ``pansim.data.systems``, at its lattice constant; the ``ag-emt`` demo at
  4.06 A, the value its golden numbers were made with), rattled by
  0.05 A with seed 1, so that forces are non-zero;
* a molecule: the first frame of ``data/<system>/<system>.extxyz``.

Usage: ``python scripts/make_golden.py [--out tests/golden/shipped_models.json]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

from pansim.data.labelers import atoms_to_dict  # the same JSON form as the labels

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "golden" / "shipped_models.json"

#: lattice constants (A) of the golden cells that differ from the system's own
GOLDEN_A = {"ag-emt": 4.06}


def structure(system: str) -> Atoms:
    """The fixed structure of ``system`` (see the module docstring)."""
    from pansim.data.systems import SYSTEMS

    spec = SYSTEMS.get(system)
    if spec is not None and spec.kind == "crystal":
        atoms = spec.conventional(GOLDEN_A.get(system))
        atoms.rattle(0.05, seed=1)
        return atoms
    return read(ROOT / "data" / system / f"{system}.extxyz", index=0)


def evaluate(model: str, atoms: Atoms) -> dict:
    """Energy, forces and (periodic cells) stress of ``model`` on ``atoms``, float64 CPU."""
    from pansim import PANCalculator

    atoms = atoms.copy()
    atoms.calc = PANCalculator(model=model, default_dtype="float64", keep_memory=False)
    out = {"energy": float(atoms.get_potential_energy()), "forces": atoms.get_forces().tolist()}
    if atoms.pbc.all():
        out["stress"] = atoms.get_stress().tolist()
    return out


def main(argv: list[str] | None = None) -> None:
    """Evaluate every registered model and write the golden JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    import pansim.pretrained as pre

    golden = {}
    for name in pre.list_models():
        system = pre.model_entry(name).get("system", "ag-emt")
        atoms = structure(system)
        golden[name] = {"system": system, "structure": atoms_to_dict(atoms)}
        golden[name].update(evaluate(name, atoms))
        assert np.isfinite(golden[name]["energy"]), name
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out} ({len(golden)} models)")


if __name__ == "__main__":
    main()
