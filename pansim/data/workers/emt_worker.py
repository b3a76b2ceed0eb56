"""EMT single-point worker (tests and demos): ``python emt_worker.py IN OUT [LOG]``.

Same file protocol as the DFT workers (:mod:`worker_protocol`), with ASE's
effective-medium theory (Cu, Ag, Au, Ni, Pd, Pt, Al; H, C, N, O as ASE
parametrises them) instead of an electronic-structure code: a label in
milliseconds, so the active-learning loop and the labelling runner can be tested
end to end. ``calc`` may hold ``{"fail_if_min_distance_below": A}`` to make the
worker fail on purpose (a stand-in for a non-converged SCF in tests).
"""

import sys
import time

import worker_protocol  # this folder: sys.path[0] when run as a script


def run(spec, log=None):
    """Label one structure with EMT; energy eV, forces eV/A [n, 3], stress eV/A^3 [3, 3]."""
    import ase
    import numpy as np
    from ase import Atoms
    from ase.calculators.emt import EMT

    a, c = spec["atoms"], spec.get("calc", {})
    t0 = time.time()
    atoms = Atoms(numbers=a["numbers"], positions=a["positions"], cell=a["cell"], pbc=a["pbc"])
    limit = c.get("fail_if_min_distance_below")
    if limit is not None and len(atoms) > 1:
        dmin = atoms.get_all_distances(mic=True)[np.triu_indices(len(atoms), 1)].min()
        if dmin < limit:
            raise RuntimeError(f"closest pair {dmin:.3f} A < {limit} A (configured failure)")
    atoms.calc = EMT()
    out = {
        "ok": True,
        "code": "emt",
        "version": ase.__version__,
        "energy": float(atoms.get_potential_energy()),
        "forces": atoms.get_forces().tolist(),
        "seconds": time.time() - t0,
    }
    if spec.get("stress") and all(atoms.pbc):
        out["stress"] = atoms.get_stress(voigt=False).tolist()
    return out


def main(argv):
    """Run the job of ``argv[1]``, write the result to ``argv[2]``; exit code 0 or 2."""
    return worker_protocol.main(argv, run)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
