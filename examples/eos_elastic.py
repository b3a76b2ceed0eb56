"""Equation of state and elastic constants of fcc Ag, from one calculator.

python examples/eos_elastic.py --model NAME_OR_PATH
python examples/eos_elastic.py --model emt --quick
"""

import argparse
from pathlib import Path

import numpy as np
from ase.build import bulk

from workflows import load_calculator
from workflows.elastic import elastic_constants, plot_elastic
from workflows.eos import equation_of_state, plot_eos

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="emt")
parser.add_argument("--out", default="example_output/eos_elastic")
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()
calc, out = load_calculator(args.model), Path(args.out)

eos = equation_of_state(bulk("Ag", "fcc", a=4.16), calc, n_points=9 if args.quick else 11)
print(f"V0 = {eos.V0:.3f} A^3/atom, B0 = {eos.B0:.1f} GPa, B0' = {eos.B0_prime:.2f}")

elastic = elastic_constants(
    bulk("Ag", "fcc", a=4.16, cubic=True), calc, n_strains=2 if args.quick else 4
)
print("C (GPa) =\n" + np.array2string(np.array(elastic.C), precision=1, suppress_small=True))
print(
    f"K_VRH = {elastic.bulk_modulus_vrh:.1f} GPa (EOS: {eos.B0:.1f}), "
    f"G_VRH = {elastic.shear_modulus_vrh:.1f} GPa, Born stable: {elastic.born_stable}"
)

eos.to_json(out / "eos.json")
elastic.to_json(out / "elastic.json")
plot_eos(eos, out / "eos.png")
plot_elastic(elastic, out / "elastic.png")
