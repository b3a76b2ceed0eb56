"""phonopy reads pansim's phonon output: phonopy.yaml (force constants) and band.yaml.

python examples/phonopy_files.py                       # the shipped Si model
python examples/phonopy_files.py --model emt --structure-name Cu --quick   # ASE's EMT (CI)

The same files come out of the CLI: ``pansim phonons --structure Si.cif --out ph/``.
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import phonopy
from ase.build import bulk

from pansim import PANCalculator
from workflows.phonons import phonons


def calculator(model: str):
    """A pansim model by name or file; ``emt`` gives ASE's EMT (a seconds-long smoke test)."""
    if model == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    return PANCalculator(model=model)


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="si", help="pansim model (name or file), or emt")
parser.add_argument("--structure-name", default="Si", help="element of the bulk crystal")
parser.add_argument("--out", default="runs/example-phonopy")
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()
out = Path(args.out)

# 1. pansim: relax (cell too), displacements, forces, force constants; phonopy's files in `out`
result = phonons(
    bulk(args.structure_name),
    calculator(args.model),
    supercell=(2, 2, 2),
    mesh=(4, 4, 4) if args.quick else (12, 12, 12),
    outdir=out,
)
files = result.provenance["inputs"]["phonopy_files"]
print("pansim wrote:", ", ".join(sorted(Path(p).name for p in files.values())))

# 2. phonopy's Python API rebuilds the phonons from phonopy.yaml alone (no calculator)
ph = phonopy.load(out / "phonopy.yaml", symmetrize_fc=False)
ph.auto_band_structure(npoints=51)
theirs = np.concatenate(ph.get_band_structure_dict()["frequencies"])
ours = np.concatenate([np.array(segment) for segment in result.band_frequencies_THz])
print(f"band structure: phonopy.load vs pansim, max |diff| {np.abs(theirs - ours).max():.2e} THz")
assert theirs.shape == ours.shape and np.allclose(theirs, ours, atol=1e-3)

# 3. phonopy's own command line reads band.yaml (phonopy-bandplot draws it)
bandplot = shutil.which("phonopy-bandplot")
bandplot = bandplot or str(Path(sys.executable).with_name("phonopy-bandplot"))
picture = out / "band_by_phonopy.png"
subprocess.run([bandplot, str(out / "band.yaml"), "-o", str(picture)], check=True)
print(f"phonopy-bandplot drew {picture} from {out / 'band.yaml'}")
assert picture.stat().st_size > 1000
