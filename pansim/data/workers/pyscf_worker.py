"""PySCF single-point worker: ``python -m pansim.data.workers.pyscf_worker IN OUT [LOG]``.

INPUT.json: ``{"atoms": {...}, "calc": {"xc": "PBE", "basis": "def2-SVP", "conv_tol": 1e-10,
"grid_level": 3, "charge": 0, "spin": 0}}``. Restricted Kohn-Sham, no density fitting.
OUTPUT.json (atomic): energy in eV, forces in eV/A, or ``{"ok": false, "error": ...}``
(exit code 2) when the SCF does not converge. Run as its own process so a crash or
a kill never leaves a half label behind.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from pansim.data.manifest import write_json_atomic
from pansim.data.units import HARTREE_TO_EV, angstrom_to_bohr, gradient_to_forces
from pansim.data.workers import worker_protocol


def run(spec: dict, log: str | None = None) -> dict:
    """Label one molecule; returns the result dict (energy eV, forces eV/A [n, 3])."""
    import pyscf
    from pyscf import dft, gto

    a, c = spec["atoms"], spec["calc"]
    t0, cpu0 = time.time(), time.process_time()
    bohr = angstrom_to_bohr(np.asarray(a["positions"], dtype=float))
    mol = gto.M(
        atom=[(int(z), tuple(p)) for z, p in zip(a["numbers"], bohr, strict=True)],
        unit="Bohr",
        basis=c["basis"],
        charge=c.get("charge", 0),
        spin=c.get("spin", 0),
        verbose=4 if log else 0,
        output=log,
    )
    mf = dft.RKS(mol)
    mf.xc = c["xc"]
    mf.grids.level = int(c["grid_level"])
    mf.conv_tol = float(c["conv_tol"])
    mf.max_cycle = int(c.get("max_cycle", 100))
    e = mf.kernel()
    if not mf.converged:
        raise RuntimeError(f"SCF not converged in {mf.max_cycle} cycles (last E = {e} Ha)")
    grad = mf.nuc_grad_method().kernel()
    return {
        "ok": True,
        "code": "pyscf",
        "version": pyscf.__version__,
        "energy": float(e) * HARTREE_TO_EV,
        "forces": gradient_to_forces(grad).tolist(),
        "energy_hartree": float(e),
        "scf_cycles": int(getattr(mf, "cycles", -1)),
        "seconds": time.time() - t0,
        "cpu_seconds": time.process_time() - cpu0,
    }


def main(argv: list[str]) -> int:
    """Run the job of ``argv[1]``, write the result to ``argv[2]``; exit code 0 or 2."""
    return worker_protocol.main(argv, run, default_log=None, write=write_json_atomic)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
