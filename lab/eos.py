"""Physical E(V) check of one crystal model (issue 23): the test of the shipping rule.

Runs the EOS workflow (``workflows.eos.equation_of_state``: relax, scan +-6 % in volume,
Birch-Murnaghan fit, B(V) = -V dP/dV at every point) on the primitive cell of the
system and applies ``workflows.bulk_modulus.bulk_modulus_checks`` with the DFT B0 of
``data/<system>/reference/properties.json``. Used by ``scripts/eos_check.py`` (tables)
and ``scripts/ship_decision.py`` (the shipping rule, :mod:`lab.ship`).
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def check(system: str, model: str) -> dict:
    """EOS result and checks of one model on ``system``'s primitive cell."""
    from pansim import PANCalculator
    from pansim.data.systems import get_system
    from workflows.bulk_modulus import bulk_modulus_checks
    from workflows.eos import equation_of_state

    spec = get_system(system)
    reference = json.loads((spec.reference_dir(ROOT / "data") / "properties.json").read_text())
    res = equation_of_state(spec.primitive(), PANCalculator(model=model, dtype="float64"))
    checks = bulk_modulus_checks(
        res.volumes, res.local_bulk_modulus, res.V0, res.B0_prime, reference["eos"]["B0"]
    )
    ratios = [v / res.V0 for v in res.volumes]
    return {
        "model": model,
        "V0": res.V0,
        "B0": res.B0,
        "B0_prime": res.B0_prime,
        "B_V0": checks["B_V0"],
        "monotone": checks["monotone"],
        "B_V0_within_10pct": checks.get("B_V0_within_rtol"),
        "B_of_V": {f"{r:.3f}": b for r, b in zip(ratios, res.local_bulk_modulus, strict=True)},
        "dft_B0": reference["eos"]["B0"],
    }
