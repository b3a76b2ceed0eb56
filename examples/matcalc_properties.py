"""matcalc's property calculators on a pansim calculator: EOS and elastic constants of Si.

python examples/matcalc_properties.py                    # the shipped Si model
python examples/matcalc_properties.py --model emt --structure-name Cu --quick
    # EMT (CI, when matcalc is installed)

matcalc (``pip install matcalc``, or ``pip install pansim[matcalc]``) takes any ASE
calculator; ``PANCalculator`` is one, so its property calculators work unchanged.
Units: matcalc reports B0 and the moduli in GPa when asked (``units_GPa=True``).
"""

import argparse
import json
from pathlib import Path

from ase.build import bulk
from matcalc import ElasticityCalc, EOSCalc

from pansim import PANCalculator


def calculator(model: str):
    """A pansim model by name or file; ``emt`` gives ASE's EMT (a seconds-long smoke test)."""
    if model == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    return PANCalculator(model=model)


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="si", help="pansim model (name or file), or emt")
parser.add_argument("--structure-name", default="Si", help="element of the bulk crystal")
parser.add_argument("--out", default="runs/example-matcalc")
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()
calc = calculator(args.model)
atoms = bulk(args.structure_name, cubic=True)

eos = EOSCalc(calc, n_points=7 if args.quick else 11, fmax=0.01).calc(atoms)
print(f"matcalc EOS:        B0 = {eos['bulk_modulus_bm']:.1f} GPa (Birch-Murnaghan)")

elastic = ElasticityCalc(calc, fmax=0.01, units_GPa=True).calc(atoms)
print(
    f"matcalc elasticity: K_VRH = {elastic['bulk_modulus_vrh']:.1f} GPa, "
    f"G_VRH = {elastic['shear_modulus_vrh']:.1f} GPa"
)

out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
summary = {
    "model": calc.todict() if hasattr(calc, "todict") else {"model_name": type(calc).__name__},
    "bulk_modulus_bm_GPa": float(eos["bulk_modulus_bm"]),
    "bulk_modulus_vrh_GPa": float(elastic["bulk_modulus_vrh"]),
    "shear_modulus_vrh_GPa": float(elastic["shear_modulus_vrh"]),
}
(out / "matcalc.json").write_text(json.dumps(summary, indent=2) + "\n")
print(f"wrote {out / 'matcalc.json'}")
