"""GPAW single-point / relaxation worker, run by the *system* python (Debian GPAW 22.8).

Self-contained on purpose: it imports only numpy, ase, gpaw and the stdlib-only
``worker_protocol`` next to it, which is what ``/usr/bin/python3`` has, never
pansim (whose dependencies live in the venv).

Usage::

    /usr/bin/python3 gpaw_worker.py INPUT.json OUTPUT.json [GPAW_LOG.txt]

INPUT.json::

    {"atoms": {"numbers": [...], "positions": [[x, y, z], ...], "cell": [[...]x3], "pbc": [...]},
     "calc": {"ecut": 500, "xc": "PBE", "width": 0.05, "kpts": [4, 4, 4],
              "convergence": {...}, "symmetry": "default" | "off"},
     "task": "single" | "relax",      # relax: ions only, cell fixed (BFGS)
     "fmax": 0.005, "steps": 200, "stress": true}

OUTPUT.json (written atomically: tmp file + os.replace) on success::

    {"ok": true, "energy": free energy eV, "forces": eV/A [n, 3], "stress": eV/A^3 [3, 3],
     "positions": final positions (relax), "code": "gpaw", "version": ..., "seconds": ...}

and ``{"ok": false, "error": "..."}`` when the SCF (or anything else) fails; the
exit code is then 2. Nothing is ever written half: the output either exists whole
or not at all.
"""

import os
import sys
import time

import worker_protocol  # this folder: sys.path[0] when run as a script


def _build(spec, log):
    import numpy as np
    from ase import Atoms
    from gpaw import GPAW, PW, FermiDirac

    a = spec["atoms"]
    atoms = Atoms(
        numbers=a["numbers"],
        positions=np.array(a["positions"]),
        cell=np.array(a["cell"]),
        pbc=a["pbc"],
    )
    c = spec["calc"]
    kwargs = dict(
        mode=PW(c["ecut"]),
        xc=c.get("xc", "PBE"),
        kpts={"size": tuple(c["kpts"]), "gamma": False},
        occupations=FermiDirac(c["width"]),
        convergence=c.get("convergence", {}),
        txt=log,
    )
    if c.get("symmetry") == "off":
        kwargs["symmetry"] = "off"
    if c.get("maxiter"):
        kwargs["maxiter"] = int(c["maxiter"])
    atoms.calc = GPAW(**kwargs)
    return atoms


def _setups_version(paths):
    """Where the PAW setups come from, with the Debian package version when known."""
    try:
        import subprocess

        v = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "gpaw-data"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except Exception:  # noqa: BLE001
        v = ""
    return {"paths": [p for p in paths if os.path.isdir(p)], "gpaw-data": v or "unknown"}


def run(spec, log):
    """One single point (or ionic relaxation) of ``spec``; GPAW text log to ``log``."""
    import gpaw

    t0, cpu0 = time.time(), time.process_time()
    atoms = _build(spec, log)
    out = {"ok": True, "code": "gpaw", "version": gpaw.__version__}
    if spec.get("task", "single") == "relax":
        from ase.optimize import BFGS

        opt = BFGS(atoms, logfile=None)
        out["relax_converged"] = bool(
            opt.run(fmax=spec.get("fmax", 0.005), steps=spec.get("steps", 200))
        )
        out["relax_steps"] = int(opt.nsteps)
    out["energy"] = float(atoms.get_potential_energy(force_consistent=True))
    out["energy_extrapolated"] = float(atoms.get_potential_energy())
    out["forces"] = atoms.get_forces().tolist()
    if spec.get("stress", True) and atoms.pbc.all():
        out["stress"] = atoms.get_stress(voigt=False).tolist()
    out["positions"] = atoms.positions.tolist()
    out["seconds"] = time.time() - t0
    out["cpu_seconds"] = time.process_time() - cpu0  # unlike wall time, not inflated by a pause
    out["setups"] = _setups_version(gpaw.setup_paths)
    return out


def main(argv):
    """Run the job of ``argv[1]``, write the result to ``argv[2]``; exit code 0 or 2."""
    return worker_protocol.main(argv, run, default_log="-")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
