"""Jobs and the worker processes that run them (GPAW on the system python, PySCF in the venv).

A *job* is a JSON-serialisable dict, the complete input of one worker run::

    {"code": "gpaw" | "pyscf" | "emt", "atoms": {numbers, positions, cell, pbc},
     "calc": {...every setting...}, "task": "single" | "relax", "stress": bool}

Each job runs in its own process: a crash, a non-converged SCF or a kill never
leaves a half label, and the driver stays a plain venv process. GPAW runs with
the Debian GPAW 22.8 on ``/usr/bin/python3`` (override: ``PANSIM_GPAW_PYTHON``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms

from pansim._lock import folder_lock
from pansim.data.manifest import write_json_atomic
from pansim.data.settings import CrystalSettings, MoleculeSettings
from pansim.data.workers.worker_protocol import PARENT_ENV

WORKER_DIR = Path(__file__).with_name("workers")
DEFAULT_TIMEOUT_S = 4 * 3600


class LabelError(RuntimeError):
    """A job that cannot be labelled (uncovered element, failed SCF, crashed worker)."""


def gpaw_python() -> str:
    """The python that has GPAW: ``$PANSIM_GPAW_PYTHON`` or ``/usr/bin/python3``."""
    return os.environ.get("PANSIM_GPAW_PYTHON", "/usr/bin/python3")


def atoms_to_dict(atoms: Atoms) -> dict:
    """Numbers, positions (A), cell (A) and pbc of ``atoms`` as plain lists."""
    return {
        "numbers": atoms.numbers.tolist(),
        "positions": atoms.positions.tolist(),
        "cell": atoms.cell.array.tolist(),
        "pbc": atoms.pbc.tolist(),
    }


def dict_to_atoms(d: dict) -> Atoms:
    """Inverse of :func:`atoms_to_dict`."""
    return Atoms(
        numbers=d["numbers"],
        positions=np.array(d["positions"]),
        cell=np.array(d["cell"]),
        pbc=d["pbc"],
    )


def job_hash(job: dict) -> str:
    """sha256 of the canonical JSON of a job (structure + every setting)."""
    return hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()


def check_elements(atoms: Atoms, covered: tuple[str, ...] | None, system: str) -> None:
    """Raise :class:`LabelError` if ``atoms`` holds an element the settings do not cover."""
    if covered is None:
        return
    extra = sorted(set(atoms.get_chemical_symbols()) - set(covered))
    if extra:
        raise LabelError(
            f"{system}: elements {extra} are not covered by its settings (covers {list(covered)})"
        )


def crystal_job(
    atoms: Atoms, settings: CrystalSettings | str, kpts, task: str = "single", **calc_extra
) -> dict:
    """GPAW job with the settings of docs/spec.md §2.1 and the family's fixed mesh ``kpts``."""
    if isinstance(settings, str):
        from pansim.data.systems import CRYSTALS  # a DFT crystal's settings by name

        settings = CRYSTALS[settings]
    s = settings
    check_elements(atoms, s.elements, s.system)
    calc = {
        "xc": s.xc,
        "ecut": s.ecut,
        "width": s.width,
        "kpts": [int(k) for k in kpts],
        "gamma": False,
        "convergence": dict(s.convergence),
        **calc_extra,
    }
    return {
        "code": "gpaw",
        "atoms": atoms_to_dict(atoms),
        "calc": calc,
        "task": task,
        "stress": True,
    }


def molecule_job(atoms: Atoms, settings: MoleculeSettings | None = None, elements=None) -> dict:
    """PySCF RKS job with the settings of docs/spec.md §2.2."""
    s = settings or MoleculeSettings()
    check_elements(atoms, elements, "molecule")
    calc = {
        "xc": s.xc,
        "basis": s.basis,
        "conv_tol": s.conv_tol,
        "grid_level": s.grid_level,
        "density_fitting": s.density_fitting,
        "charge": 0,
        "spin": 0,
    }
    return {
        "code": "pyscf",
        "atoms": atoms_to_dict(atoms),
        "calc": calc,
        "task": "single",
        "stress": False,
    }


def emt_job(atoms: Atoms, **calc: object) -> dict:
    """EMT job (tests and demos; ``pansim/data/workers/emt_worker.py``)."""
    return {
        "code": "emt",
        "atoms": atoms_to_dict(atoms),
        "calc": dict(calc),
        "task": "single",
        "stress": bool(np.all(atoms.pbc)),
    }


def _command(job: dict, inp: Path, out: Path, log: Path) -> list[str]:
    if job["code"] == "gpaw":
        return [gpaw_python(), str(WORKER_DIR / "gpaw_worker.py"), str(inp), str(out), str(log)]
    if job["code"] == "pyscf":
        return [
            sys.executable,
            "-m",
            "pansim.data.workers.pyscf_worker",
            str(inp),
            str(out),
            str(log),
        ]
    if job["code"] == "emt":  # tests and demos: ASE's EMT, same protocol
        return [sys.executable, str(WORKER_DIR / "emt_worker.py"), str(inp), str(out), str(log)]
    raise LabelError(f"unknown code {job['code']!r}")


#: the worker of a running job: ``{"pid": ..., "args": [...]}`` in the job folder
WORKER_RECORD = "worker.json"


def stop_orphan_worker(workdir: Path) -> int | None:
    """Kill a worker of ``workdir`` left running by a labeller that was killed; return its pid.

    Workers die with their labeller on Linux (see
    ``worker_protocol.die_with_parent``); this is the second line: a recorded
    worker that still runs the same command line (checked in ``/proc``, so a
    reused pid is never killed) is stopped before the job starts again.
    """
    import signal

    record = workdir / WORKER_RECORD
    try:
        info = json.loads(record.read_text())
        pid, args = int(info["pid"]), [str(a) for a in info["args"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        running = cmdline.read_bytes().split(b"\0")[:-1]
    except OSError:
        record.unlink(missing_ok=True)
        return None
    if [a.decode(errors="replace") for a in running] != args:
        record.unlink(missing_ok=True)
        return None
    os.kill(pid, signal.SIGKILL)
    record.unlink(missing_ok=True)
    return pid


def run_job(
    job: dict,
    workdir: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    threads: int = 1,
) -> dict:
    """Run one job in a worker process and return its result dict.

    Returns ``{"ok": True, "energy": eV, "forces": eV/A [n, 3], "stress": eV/A^3 [3, 3], ...}``
    or ``{"ok": False, "error": reason}``; never raises for a failed calculation.
    The worker's own log (GPAW txt / PySCF output) is kept in ``workdir``.
    """
    workdir = Path(workdir or tempfile.mkdtemp(prefix="pansim-job-"))
    workdir.mkdir(parents=True, exist_ok=True)
    inp, out, log = workdir / "input.json", workdir / "result.json", workdir / "calc.log"
    out.unlink(missing_ok=True)
    write_json_atomic(inp, job)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }
    env[PARENT_ENV] = str(os.getpid())  # the worker dies with this process
    with folder_lock(workdir, "pansim label job"):  # one labeller per job folder
        stop_orphan_worker(workdir)
        proc = subprocess.Popen(
            _command(job, inp, out, log),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        write_json_atomic(workdir / WORKER_RECORD, {"pid": proc.pid, "args": proc.args})
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return {"ok": False, "error": f"timeout after {timeout:.0f} s"}
        finally:
            (workdir / WORKER_RECORD).unlink(missing_ok=True)
    if out.exists():
        try:
            return json.loads(out.read_text())
        except json.JSONDecodeError as exc:
            return {"ok": False, "error": f"unreadable worker result: {exc}"}
    tail = (stderr or stdout or "")[-1500:]
    return {
        "ok": False,
        "error": f"worker exited with code {proc.returncode} and no result: {tail}",
    }
