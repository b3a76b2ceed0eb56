r"""Energy along a like-ion contact in a crystal (does a model repel two like ions?).

One atom of the conventional cell of ``--system`` is moved straight toward its nearest
neighbour of the same element, the rest of the cell fixed; the energy (relative to the
lattice distance) is printed for each model. Ionic DFT data never hold two Li+ (or F-)
closer than about 2 A, so this probes how a model extrapolates where its training data
stop: a physical potential rises steeply all the way in; a curve that turns down
at short range is a hole that hot MD can fall into (``pansim validate``'s liquid run of
LiF does: ``liquid closest approach``). Single points, seconds per model.

    python scripts/like_ion_contact.py --system lif --element Li \
        --models lif lif-baseline-cosine100 lif-pan lif-pgs lif-pan+pgs \
        --out results/validate/lif_li_li_contact
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DISTANCES = (2.8, 2.4, 2.1, 1.9, 1.7, 1.5, 1.3, 1.1, 0.9, 0.7, 0.5)


def scan(system: str, element: str, model: str, distances=DISTANCES) -> list[float]:
    """Energies (eV, relative to the first distance) along the contact."""
    from pansim import PANCalculator
    from pansim.data.systems import get_system

    cell = get_system(system).conventional()
    same = [i for i, a in enumerate(cell) if a.symbol == element]
    if len(same) < 2:
        raise SystemExit(f"{system}: fewer than two {element} atoms in its conventional cell")
    i = same[0]
    d = cell.get_all_distances(mic=True)[i]
    j = min((k for k in same if k != i), key=lambda k: d[k])
    direction = cell.get_distance(i, j, mic=True, vector=True)
    direction /= np.linalg.norm(direction)
    calc = PANCalculator(model=model, check_domain=False)
    energies = []
    for r in distances:
        atoms = cell.copy()
        atoms.positions[j] = atoms.positions[i] + direction * r
        atoms.calc = calc
        energies.append(float(atoms.get_potential_energy()))
    return [e - energies[0] for e in energies]


def main(argv: list[str] | None = None) -> int:
    """Scan every model, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True)
    parser.add_argument("--element", required=True)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = {m: scan(args.system, args.element, m) for m in args.models}
    head = " | ".join(f"{r:g}" for r in DISTANCES)
    lines = [
        f"# {args.element}-{args.element} contact in {args.system}: E(r) - E({DISTANCES[0]} A), eV",
        "",
        "One atom moved toward its nearest like neighbour, the rest of the conventional "
        "cell fixed (`python scripts/like_ion_contact.py " + " ".join(argv or sys.argv[1:]) + "`).",
        "",
        f"| model | {head} | turns down below (A) |",
        "|---|" + "---|" * (len(DISTANCES) + 1),
    ]
    for model, energies in rows.items():
        peak = int(np.argmax(energies))
        turn = f"{DISTANCES[peak]:g}" if peak < len(DISTANCES) - 1 else "-"
        lines.append(f"| {model} | " + " | ".join(f"{e:.2f}" for e in energies) + f" | {turn} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        from pansim.files import write_text_atomic

        args.out.parent.mkdir(parents=True, exist_ok=True)
        data = {"system": args.system, "element": args.element, "distances_A": DISTANCES,
                "energies_eV": rows}  # fmt: skip
        write_text_atomic(args.out.with_suffix(".json"), json.dumps(data, indent=1) + "\n")
        write_text_atomic(args.out.with_suffix(".md"), text)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
