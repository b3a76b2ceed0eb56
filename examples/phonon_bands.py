"""Phonon band structure and DOS of fcc Ag with phonopy, saved as a PNG.

python examples/phonon_bands.py --model NAME_OR_PATH
python examples/phonon_bands.py --model emt --quick
"""

import argparse
from pathlib import Path

from ase.build import bulk

from workflows import load_calculator
from workflows.phonons import phonons, plot_phonons

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="emt")
parser.add_argument("--out", default="example_output/phonons")
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()

result = phonons(
    bulk("Ag", "fcc", a=4.16),
    load_calculator(args.model),
    supercell=(2, 2, 2),
    mesh=(6, 6, 6) if args.quick else (20, 20, 20),
)
for label, freqs in result.high_symmetry_THz.items():
    print(f"{label:>6}: " + "  ".join(f"{f:6.3f}" for f in freqs) + "  THz")
if result.imaginary_modes:
    print(f"warning: {len(result.imaginary_modes)} imaginary modes")
result.to_json(Path(args.out) / "phonons.json")
plot_phonons(result, Path(args.out) / "bands.png")
print(f"wrote {Path(args.out) / 'bands.png'}")
