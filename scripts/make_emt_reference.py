#!/usr/bin/env python
"""EMT reference properties of the demonstration system ``ag-emt`` for ``pansim validate``.

ASE's EMT is the "truth" the demonstration models ``ag-emt-demo`` and
``ag-emt-demo-baseline`` were trained on (``data/ag-emt``), so their validation
compares against EMT, not DFT. The properties are computed with the validation
workflows themselves (``workflows.validate.evaluate`` with the ``emt``
calculator, the FULL settings ``pansim validate`` uses by default) and written in
the schema of :mod:`workflows.validate` with ``"reference": "EMT"``.

Usage: ``python scripts/make_emt_reference.py [--out pansim/data/reference/properties/ag-emt.json]
[--quick]``. Runs in about a minute on 2 CPU cores; deterministic up to MD noise
(seeded by the workflows).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_OUT = ROOT / "pansim" / "data" / "reference" / "properties" / "ag-emt.json"


def _round(x, digits=6):
    if isinstance(x, float):
        return round(x, digits)
    if isinstance(x, list):
        return [_round(v, digits) for v in x]
    if isinstance(x, dict):
        return {k: _round(v, digits) for k, v in x.items()}
    return x


def reference_from_results(results: dict, system: str, settings_name: str) -> dict:
    """Map workflow results (``WorkflowResult.to_dict``) to the validate reference schema."""
    from workflows.validate import SYSTEMS, _c11, _c12, _c44

    liquid_K = SYSTEMS[system].liquid_K

    ref: dict = {
        "system": system,
        "reference": "EMT",
        "note": (
            "ASE EMT properties of fcc Ag computed with pansim's own workflows "
            f"(scripts/make_emt_reference.py, {settings_name} settings). A demonstration "
            "reference for the EMT-trained demo models, NOT DFT."
        ),
    }
    if "eos" in results:
        e = results["eos"]
        comp = e.get("compressed") or {}
        ref["eos"] = {
            "V0": e["V0"], "E0": e["E0"], "B0": e["B0"], "B0_prime": e["B0_prime"],
            "compressed": {"volume_ratio": comp.get("volume_ratio"),
                           "energy": comp.get("energy_eV_per_atom")},
        }  # fmt: skip
    if "elastic" in results:
        c = results["elastic"]["C"]
        ref["elastic"] = {"C11": _c11(c), "C12": _c12(c), "C44": _c44(c)}
    if "phonons" in results:
        hs = results["phonons"]["high_symmetry_THz"]
        ref["phonons"] = {
            "gamma_THz": sorted(hs.get("Gamma", [])),
            "X_THz": sorted(hs.get("X", [])),
            "L_THz": sorted(hs.get("L", [])),
        }
    if "repulsion" in results:
        r = results["repulsion"]
        ref["repulsion"] = {"r": r["r_A"], "energy": r["energy_eV"]}
    if results.get("md", {}).get("rdf_first_peak_A") is not None:
        ref["md"] = {"rdf_first_peak_A": results["md"]["rdf_first_peak_A"]}
    liquid = results.get("liquid", {})
    if liquid.get("rdf_first_peak_A") is not None:
        ref["liquid"] = {
            "temperature_K": liquid_K,  # the target temperature (the run's samples vary)
            "rdf_first_peak_A": liquid["rdf_first_peak_A"],
            "min_distance_A": liquid.get("min_distance_A"),
        }
    return _round(ref)


def main(argv=None) -> int:
    """Compute the EMT properties and write the reference JSON."""
    from pansim.files import write_text_atomic as atomic_write_text
    from workflows import load_calculator
    from workflows import validate as v

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--system", default="ag-emt")
    parser.add_argument("--quick", action="store_true", help="validate's QUICK settings")
    args = parser.parse_args(argv)
    settings = v.QUICK if args.quick else v.FULL
    with tempfile.TemporaryDirectory() as tmp:
        results, messages = v.evaluate(
            v.SYSTEMS[args.system], load_calculator("emt"), settings, Path(tmp) / "emt", {}
        )
    for m in messages:
        print("note:", m)
    ref = reference_from_results(results, args.system, "quick" if args.quick else "full")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(ref, indent=1) + "\n")
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
