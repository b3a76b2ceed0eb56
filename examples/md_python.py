"""MD scripted in Python: Langevin NVT equilibration, then NVE production and its analysis.

python examples/md_python.py --model NAME_OR_PATH     # a pansim model
python examples/md_python.py --model emt --quick      # ASE's EMT, seconds (CI)
"""

import argparse
from pathlib import Path

from ase.build import bulk
from ase.io import read

from workflows import load_calculator
from workflows.md import plot_md, run_md

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="emt")
parser.add_argument("--out", default="example_output/md")
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()

calc = load_calculator(args.model)
atoms = bulk("Ag", "fcc", a=4.16, cubic=True) * (2, 2, 2)  # 32 atoms
steps = 50 if args.quick else 2000
out = Path(args.out)

# 1. NVT (Langevin) at 600 K; checkpoints let a killed run continue where it stopped
nvt = run_md(
    atoms,
    calc,
    ensemble="langevin",
    temperature_K=600,
    steps=steps,
    timestep_fs=2.0,
    outdir=out / "nvt",
)
print(f"NVT: T = {nvt.temperature_mean_K:.0f} +- {nvt.temperature_std_K:.0f} K")

# 2. NVE from the last NVT frame (positions and momenta are in the trajectory)
start = read(out / "nvt" / "md.traj", index=-1)
nve = run_md(start, calc, ensemble="nve", steps=steps, timestep_fs=1.0, outdir=out / "nve")
print(f"NVE drift: {nve.drift_meV_per_atom_per_ps:.3f} +- {nve.drift_std_err:.3f} meV/atom/ps")
print(f"RDF first peak: {nve.rdf_first_peak_A:.3f} A (height {nve.rdf_first_peak_height:.2f})")
nve.to_json(out / "nve.json")
plot_md(nve, out / "nve.png")
