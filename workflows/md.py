"""Molecular dynamics (NVE, NVT, NPT) with checkpoints, blow-up detection and analysis.

Ensembles (``ENSEMBLES`` registry), all ASE integrators:

- ``nve``: velocity Verlet;
- ``langevin``: Langevin NVT (stochastic);
- ``nhc``: Nose-Hoover chain NVT (deterministic);
- ``bussi``: Bussi stochastic velocity rescaling NVT;
- ``npt``: isotropic MTK (Nose-Hoover chain thermostat and barostat);
- ``npt_aniso``: MTK with a fully flexible cell.

Restart: every ``checkpoint_every`` steps ``checkpoint.json`` stores positions,
momenta, cell, the step, the energy samples, the number of trajectory frames,
the random generator state (Langevin, Bussi) and the thermostat/barostat
variables (NHC, MTK). A restarted run continues from there; the trajectory and
the log are cut back to the checkpoint. What is exact: every integrator state
variable is saved (JSON floats round-trip exactly), so for ``nve``,
``langevin``, ``bussi``, ``nhc``, ``npt`` and ``npt_aniso`` the run equals the
uninterrupted run up to the calculator's own round-off (a fresh calculator may
sum neighbours in another order: about 1e-15 eV/atom with EMT). Samples taken
between the last checkpoint and an interruption are recomputed, not reused.

Python::

    from workflows.md import run_md
    res = run_md(atoms, calc, ensemble="nve", temperature_K=300, steps=1000, outdir="md")
    res.drift_meV_per_atom_per_ps, res.rdf_first_peak_A

CLI: ``pansim md --model emt --structure Cu.cif --ensemble nve --steps 1000 --out md/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units

from pansim.cli_common import (
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    progress_bar,
)
from pansim.domain import finding_distance, finding_kind
from pansim.provenance import calculator_provenance
from workflows._common import (
    WorkflowResult,
    add_common_arguments,
    atomic_write_text,
    cli_calculator,
    new_figure,
    provenance,
    read_structure,
    save_figure,
    timed,
    to_jsonable,
    with_calc,
    write_outputs,
)
from workflows._md_guard import (
    check_run_folder,
    closest_pair,
    fingerprint_inputs,
    folder_lock,
    rdf_range,
)

MD_UNITS = {
    "timestep_fs": "fs",
    "time_ps": "ps",
    "etot_eV_per_atom": "eV/atom",
    "epot_eV_per_atom": "eV/atom",
    "temperature_K": "K",
    "drift_meV_per_atom_per_ps": "meV/atom/ps",
    "drift_std_err": "meV/atom/ps",
    "rdf_r_A": "A",
    "rdf_first_peak_A": "A",
    "rdf_first_peak_height": "dimensionless",
    "min_distance_A": "A (closest pair over the trajectory frames)",
}


@dataclasses.dataclass
class MDConfig:
    """Options of :func:`run_md`; times in fs, temperatures in K, pressure in GPa.

    ``init_temperature_K`` (default: ``temperature_K``) sets the initial velocities.
    An NVE run from a perfect lattice equilibrates near half of it (equipartition),
    so ``pansim md`` starts NVE at 2 x ``temperature_K`` unless told otherwise.
    ``min_distance_A`` and ``max_temperature_K`` stop a run that breaks down.
    """

    ensemble: str = "nve"
    steps: int = 1000
    timestep_fs: float = 1.0
    temperature_K: float = 300.0
    init_temperature_K: float | None = None
    friction_per_fs: float = 0.01
    tdamp_fs: float = 100.0
    pressure_GPa: float = 0.0
    pdamp_fs: float = 1000.0
    seed: int = 0
    sample_every: int = 1
    traj_every: int = 10
    checkpoint_every: int = 100
    blowup_factor: float = 10.0
    rdf_rmax: float = 6.0
    rdf_bins: int = 120
    min_distance_A: float = 0.5
    max_temperature_K: float = 20000.0

    def check(self) -> None:
        """Raise ``ValueError`` naming the first option out of its range."""
        for name, value, ok, what in (
            ("steps", self.steps, self.steps >= 0, ">= 0"),
            ("timestep_fs", self.timestep_fs, self.timestep_fs > 0, "> 0 fs"),
            ("temperature_K", self.temperature_K, self.temperature_K >= 0, ">= 0 K"),
            ("sample_every", self.sample_every, self.sample_every >= 1, ">= 1"),
            ("traj_every", self.traj_every, self.traj_every >= 1, ">= 1"),
            ("checkpoint_every", self.checkpoint_every, self.checkpoint_every >= 1, ">= 1"),
            ("min_distance_A", self.min_distance_A, self.min_distance_A >= 0, ">= 0 A"),
        ):
            if not (np.isfinite(value) and ok):
                raise ValueError(f"MD option {name} = {value!r} must be {what}")
        t0 = self.init_temperature_K
        if t0 is not None and not (np.isfinite(t0) and t0 >= 0):
            raise ValueError(f"MD option init_temperature_K = {t0!r} must be >= 0 K")
        for name, value in (("temperature_K", self.temperature_K), ("init_temperature_K", t0)):
            if value is not None and value > self.max_temperature_K:
                raise ValueError(
                    f"MD option {name} = {value:g} K is above max_temperature_K = "
                    f"{self.max_temperature_K:g} K, where the run would stop at once; "
                    "raise max_temperature_K (CLI --max-temperature) to run this hot"
                )


@dataclasses.dataclass
class MDResult(WorkflowResult):
    """Samples, status and analysis of an MD run."""

    ensemble: str = "nve"
    status: str = "completed"
    stop_reason: str = ""
    steps_requested: int = 0
    steps_done: int = 0
    restarted_from_step: int | None = None
    timestep_fs: float = 1.0
    time_ps: list[float] = dataclasses.field(default_factory=list)
    etot_eV_per_atom: list[float] = dataclasses.field(default_factory=list)
    epot_eV_per_atom: list[float] = dataclasses.field(default_factory=list)
    temperature_K: list[float] = dataclasses.field(default_factory=list)
    drift_meV_per_atom_per_ps: float | None = None
    drift_std_err: float | None = None
    temperature_mean_K: float = float("nan")
    temperature_std_K: float = float("nan")
    rdf_r_A: list[float] = dataclasses.field(default_factory=list)
    rdf_g: list[float] = dataclasses.field(default_factory=list)
    rdf_first_peak_A: float | None = None
    rdf_first_peak_height: float | None = None
    min_distance_A: float | None = None
    files: dict[str, str] = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------- ensembles
def _nve(atoms: Atoms, cfg: MDConfig, rng: np.random.Generator):
    from ase.md.verlet import VelocityVerlet

    return VelocityVerlet(atoms, timestep=cfg.timestep_fs * units.fs)


def _langevin(atoms: Atoms, cfg: MDConfig, rng: np.random.Generator):
    from ase.md.langevin import Langevin

    return Langevin(
        atoms,
        cfg.timestep_fs * units.fs,
        temperature_K=cfg.temperature_K,
        friction=cfg.friction_per_fs / units.fs,
        fixcm=False,
        rng=rng,
    )


def _nhc(atoms: Atoms, cfg: MDConfig, rng: np.random.Generator):
    from ase.md.nose_hoover_chain import NoseHooverChainNVT

    return NoseHooverChainNVT(
        atoms, cfg.timestep_fs * units.fs, cfg.temperature_K, tdamp=cfg.tdamp_fs * units.fs
    )


def _bussi(atoms: Atoms, cfg: MDConfig, rng: np.random.Generator):
    from ase.md.bussi import Bussi

    return Bussi(
        atoms, cfg.timestep_fs * units.fs, cfg.temperature_K, taut=cfg.tdamp_fs * units.fs, rng=rng
    )


def _mtk(integrator: type, atoms: Atoms, cfg: MDConfig):
    """An MTK barostat-thermostat of class ``integrator`` with the settings of ``cfg``."""
    return integrator(
        atoms,
        cfg.timestep_fs * units.fs,
        cfg.temperature_K,
        pressure_au=cfg.pressure_GPa * units.GPa,
        tdamp=cfg.tdamp_fs * units.fs,
        pdamp=cfg.pdamp_fs * units.fs,
    )


def _npt(atoms: Atoms, cfg: MDConfig, rng: np.random.Generator):
    from ase.md.nose_hoover_chain import IsotropicMTKNPT

    return _mtk(IsotropicMTKNPT, atoms, cfg)


def _npt_aniso(atoms: Atoms, cfg: MDConfig, rng: np.random.Generator):
    from ase.md.nose_hoover_chain import MTKNPT

    return _mtk(MTKNPT, atoms, cfg)


#: ensemble name -> factory(atoms, config, rng) returning an ASE MolecularDynamics object.
ENSEMBLES: dict[str, Callable[[Atoms, MDConfig, np.random.Generator], Any]] = {
    "nve": _nve,
    "langevin": _langevin,
    "nhc": _nhc,
    "bussi": _bussi,
    "npt": _npt,
    "npt_aniso": _npt_aniso,
}

#: integrator state saved in checkpoints: (owner attribute or "", variable names)
_STATE = [
    ("", ("_eps", "_p_eps", "_cell0", "_volume0", "_h", "_p_g", "transferred_energy")),
    ("_thermostat", ("_eta", "_p_eta")),
    ("_barostat", ("_xi", "_p_xi")),
]


def integrator_state(dyn: Any) -> dict[str, Any]:
    """Thermostat/barostat variables and the RNG state of an ASE integrator (JSON-ready)."""
    state: dict[str, Any] = {}
    for owner_name, names in _STATE:
        owner = getattr(dyn, owner_name, None) if owner_name else dyn
        for name in names:
            if owner is not None and hasattr(owner, name):
                state[f"{owner_name}.{name}"] = to_jsonable(getattr(owner, name))
    rng = getattr(dyn, "rng", None)
    if isinstance(rng, np.random.Generator):
        state["rng"] = to_jsonable(rng.bit_generator.state)
    return state


def restore_integrator_state(dyn: Any, state: dict[str, Any]) -> None:
    """Inverse of :func:`integrator_state`."""
    for key, value in state.items():
        if key == "rng":
            dyn.rng.bit_generator.state = value
            continue
        owner_name, name = key.split(".")
        owner = getattr(dyn, owner_name) if owner_name else dyn
        old = getattr(owner, name)
        setattr(owner, name, np.array(value) if isinstance(old, np.ndarray) else value)


# --------------------------------------------------------------------------- analysis
def linear_drift(time_ps: np.ndarray, energy: np.ndarray) -> tuple[float, float]:
    """Slope of ``energy`` against ``time_ps`` by least squares, and its standard error."""
    t = np.asarray(time_ps, dtype=float)
    e = np.asarray(energy, dtype=float)
    if len(t) < 3:
        return float("nan"), float("nan")
    design = np.stack([t, np.ones_like(t)], axis=1)
    (slope, intercept), *_ = np.linalg.lstsq(design, e, rcond=None)
    resid = e - design @ (slope, intercept)
    stderr = np.sqrt((resid**2).sum() / (len(t) - 2) / ((t - t.mean()) ** 2).sum())
    return float(slope), float(stderr)


def rdf(frames: list[Atoms], rmax: float = 6.0, nbins: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Total radial distribution function averaged over ``frames``.

    Pairs are found with ASE's periodic neighbour list, which includes every
    periodic image within ``rmax``, so cells smaller than ``2 * rmax`` are handled
    correctly. Returns bin centres ``r`` (A) and ``g(r)``, both ``[nbins]``.
    A structure that is not periodic in all three directions (a molecule, a slab)
    has no density to normalise by: its curve is the mean neighbour density
    ``rho g(r)`` (1/A^3) around an atom, whose peak positions mean the same.
    """
    from ase.neighborlist import neighbor_list

    edges = np.linspace(0.0, rmax, nbins + 1)
    hist = np.zeros(nbins)
    norm = 0.0
    for atoms in frames:
        d = neighbor_list("d", atoms, rmax, self_interaction=False)
        hist += np.histogram(d, bins=edges)[0]
        n = len(atoms)
        periodic = bool(atoms.pbc.all()) and atoms.cell.rank == 3
        norm += n * n / atoms.get_volume() if periodic else n
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = hist / (norm * shell) if norm > 0 else hist
    return 0.5 * (edges[1:] + edges[:-1]), g


def closest_approach(frames: list[Atoms], rmax: float = 6.0) -> float | None:
    """Smallest interatomic distance (A, periodic images included) over ``frames``."""
    from ase.neighborlist import neighbor_list

    found = [neighbor_list("d", atoms, rmax).min(initial=np.inf) for atoms in frames]
    value = min(found, default=np.inf)
    return float(value) if np.isfinite(value) else None


def first_peak(r: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """Position and height of the first peak: the maximum of the first region where g > 1."""
    above = np.nonzero(g > 1.0)[0]
    if len(above) == 0:
        i = int(np.argmax(g))
        return float(r[i]), float(g[i])
    start = above[0]
    below = np.nonzero(g[start:] < 1.0)[0]
    stop = start + (below[0] if len(below) else len(g) - start)
    i = start + int(np.argmax(g[start:stop]))
    return float(r[i]), float(g[i])


# --------------------------------------------------------------------------- the run
_LOG_HEADER = "#   step    time_ps   etot_eV/atom   epot_eV/atom        T_K\n"


def _log_line(step: int, t_ps: float, etot: float, epot: float, temp: float) -> str:
    return f"{step:8d} {t_ps:10.4f} {etot:14.8f} {epot:14.8f} {temp:10.2f}\n"


class _Run:
    """Orchestrates one MD run: files, checkpoints, sampling, blow-up checks."""

    def __init__(self, atoms: Atoms, calc: Any, cfg: MDConfig, outdir: Path | None):
        self.cfg, self.outdir = cfg, outdir
        self.atoms = with_calc(atoms, calc)
        self.samples: dict[str, list[float]] = {"time_ps": [], "etot": [], "epot": [], "T": []}
        self.frames: list[Atoms] = []
        self.n_frames = 0
        self.step = 0
        self.restarted_from: int | None = None
        self.rng = np.random.default_rng(cfg.seed)
        #: out-of-training-domain findings of the model (PANCalculator results["warnings"]):
        #: per kind ("distance Li-Li", "coordination of F", ...) the first step and line,
        #: the number of steps it held, and the extreme line (the shortest distance)
        self.domain: dict[str, dict[str, Any]] = {}

    def note_domain(self) -> None:
        """Record the model's out-of-domain findings for the current step."""
        results = getattr(self.atoms.calc, "results", None) or {}
        for line in results.get("warnings") or []:
            kind = finding_kind(line)
            note = self.domain.get(kind)
            if note is None:
                self.domain[kind] = {"first_step": self.step, "first": line, "steps": 1,
                                     "worst": line}  # fmt: skip
                continue
            note["steps"] += 1
            if finding_distance(line) < finding_distance(note["worst"]):
                note["worst"] = line

    def domain_warnings(self) -> list[str]:
        """One line per kind of out-of-domain finding (empty inside the training domain)."""
        out = []
        for kind, note in sorted(self.domain.items()):
            line = (
                f"outside the model's training data ({kind}) on {note['steps']} of "
                f"{self.step} steps, first at step {note['first_step']}: {note['first']}"
            )
            if note["worst"] != note["first"] and kind.startswith("distance"):
                line += f"; closest: {note['worst']}"
            out.append(line + "; results there are extrapolations")
        return out

    # files
    def path(self, name: str) -> Path | None:
        return None if self.outdir is None else self.outdir / name

    def load_checkpoint(self) -> dict[str, Any] | None:
        path = self.path("checkpoint.json")
        if path is None or not path.exists():
            return None
        state = json.loads(path.read_text())
        a = self.atoms
        if len(state["positions"]) != len(a):
            raise ValueError(
                f"{path} holds {len(state['positions'])} atoms, the structure {len(a)}: "
                "use another output directory or restart=False"
            )
        a.set_cell(state["cell"])
        a.set_positions(np.array(state["positions"]))
        a.set_momenta(np.array(state["momenta"]))
        self.step = self.restarted_from = int(state["step"])
        self.samples = state["samples"]
        self.n_frames = int(state["n_frames"])
        self.domain = state.get("domain", {})
        self._truncate_trajectory()
        self._rewrite_log()
        return state

    def _rewrite_log(self) -> None:
        s, dt = self.samples, self.cfg.timestep_fs
        lines = [_LOG_HEADER]
        for t, etot, epot, temp in zip(s["time_ps"], s["etot"], s["epot"], s["T"], strict=True):
            lines.append(_log_line(round(t * 1e3 / dt), t, etot, epot, temp))
        atomic_write_text(self.path("md.log"), "".join(lines))

    def _truncate_trajectory(self) -> None:
        """Keep the first ``n_frames`` frames: written to a new file, fsynced, then renamed over.

        A kill at any point leaves either the old complete trajectory or the new one.
        """
        import os

        from ase.io import Trajectory

        from pansim.files import atomic_path

        path = self.path("md.traj")
        frames = list(Trajectory(str(path))) if path.exists() else []
        with atomic_path(path) as tmp:
            with Trajectory(str(tmp), "w") as traj:
                for frame in frames[: self.n_frames]:
                    traj.write(frame)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())

    def save_checkpoint(self, dyn: Any) -> None:
        path = self.path("checkpoint.json")
        if path is None:
            return
        a = self.atoms
        state = {
            "step": self.step,
            "cell": a.cell.array,
            "positions": a.positions,
            "momenta": a.get_momenta(),
            "samples": self.samples,
            "n_frames": self.n_frames,
            "domain": self.domain,
            "integrator": integrator_state(dyn),
        }
        atomic_write_text(path, json.dumps(to_jsonable(state)))

    # sampling
    def sample(self, log) -> None:
        a, n = self.atoms, len(self.atoms)
        epot = a.get_potential_energy() / n
        ekin = a.get_kinetic_energy() / n
        temp = a.get_temperature()
        self.samples["time_ps"].append(self.step * self.cfg.timestep_fs * 1e-3)
        self.samples["etot"].append(epot + ekin)
        self.samples["epot"].append(epot)
        self.samples["T"].append(temp)
        if log is not None:
            log.write(_log_line(self.step, self.samples["time_ps"][-1], epot + ekin, epot, temp))
            log.flush()

    def write_frame(self, traj) -> None:
        self.n_frames += 1
        if traj is not None:
            traj.write(self.atoms)
        else:
            self.frames.append(self.atoms.copy())

    def blown_up(self, t_ref: float) -> str:
        a = self.atoms
        if not np.all(np.isfinite(a.positions)) or not np.all(np.isfinite(a.get_momenta())):
            return "non-finite positions or momenta"
        if not np.isfinite(a.get_potential_energy()):
            return "non-finite energy"
        temp = a.get_temperature()
        if temp > self.cfg.blowup_factor * t_ref:
            return f"temperature {temp:.0f} K exceeds {self.cfg.blowup_factor:g} x {t_ref:.0f} K"
        if temp > self.cfg.max_temperature_K:
            cap = self.cfg.max_temperature_K
            return f"temperature {temp:.0f} K exceeds max_temperature_K {cap:g} K"
        close = closest_pair(a, self.cfg.min_distance_A)
        if close is not None:
            return (
                f"two atoms came {close:.3f} A apart, closer than min_distance_A "
                f"{self.cfg.min_distance_A:g} A"
            )
        return ""


def _initial_velocities(run: _Run) -> None:
    """Maxwell-Boltzmann momenta at ``init_temperature_K`` unless the structure has momenta."""
    from ase.md.velocitydistribution import Stationary

    from pansim.compat import thermalize

    cfg, a = run.cfg, run.atoms
    t0 = cfg.temperature_K if cfg.init_temperature_K is None else cfg.init_temperature_K
    if not np.any(a.get_momenta()) and t0 > 0:
        thermalize(a, t0, rng=run.rng)
        Stationary(a)


def run_md(
    atoms: Atoms,
    calc: Any,
    config: MDConfig | None = None,
    *,
    outdir: str | Path | None = None,
    restart: bool = True,
    **options: Any,
) -> MDResult:
    """Run MD on a copy of ``atoms`` and analyse it.

    Parameters
    ----------
    config : MDConfig, optional
        All options; keyword ``options`` override its fields (e.g. ``steps=500``).
    outdir : str or Path, optional
        Directory for ``md.traj``, ``md.log`` and ``checkpoint.json``; without it the
        run is in memory only (no checkpoints).
    restart : bool
        Continue from ``outdir/checkpoint.json`` when it exists.

    Returns
    -------
    MDResult
        ``status`` is ``"completed"`` or ``"blown_up"`` (trajectory kept up to the stop).

    Raises
    ------
    ValueError
        An option out of range (:meth:`MDConfig.check`), or an ``outdir`` that
        holds a run with other inputs or is used by another process
        (:class:`workflows._md_guard.RunFolderError`).
    """
    cfg = dataclasses.replace(config or MDConfig(), **options)
    if cfg.ensemble not in ENSEMBLES:
        raise ValueError(f"unknown ensemble {cfg.ensemble!r}; choose from {sorted(ENSEMBLES)}")
    cfg.check()
    if len(atoms) == 0:
        raise ValueError("MD needs at least one atom (check the structure and --supercell)")
    out = None if outdir is None else Path(outdir)
    if out is None:
        return _run_md(atoms, calc, cfg, None, restart)
    inputs = fingerprint_inputs(atoms, calculator_provenance(calc), dataclasses.asdict(cfg))
    with folder_lock(out):
        check_run_folder(out, inputs, restart)
        result = _run_md(atoms, calc, cfg, out, restart)
        write_extxyz(out / "md.traj", out / "md.extxyz", calculator_provenance(calc))
    return result


def write_extxyz(traj_path: Path, xyz_path: Path, model: dict[str, str]) -> None:
    """Rewrite ``xyz_path`` (atomically) from every frame of ``traj_path``, model named in info."""
    from ase.io import Trajectory, write

    from pansim.files import atomic_path

    with Trajectory(str(traj_path)) as traj:
        frames = [frame for frame in traj]
    for frame in frames:
        frame.info.update({k: v for k, v in model.items() if v})
    with atomic_path(xyz_path) as tmp:
        write(tmp, frames, format="extxyz")


def _run_md(atoms: Atoms, calc: Any, cfg: MDConfig, out: Path | None, restart: bool) -> MDResult:
    """:func:`run_md` once the options and the output folder are checked."""
    from ase.io import Trajectory

    run = _Run(atoms, calc, cfg, out)
    state = run.load_checkpoint() if restart else None
    if state is None:
        _initial_velocities(run)
    dyn = ENSEMBLES[cfg.ensemble](run.atoms, cfg, run.rng)
    if state is not None:
        restore_integrator_state(dyn, state["integrator"])
    timings: dict[str, float] = {}
    mode = "a" if state else "w"
    traj = None if out is None else Trajectory(str(out / "md.traj"), mode)
    log = None if out is None else open(out / "md.log", mode)  # noqa: SIM115
    t_ref = max(cfg.temperature_K, run.atoms.get_temperature(), 10.0)
    reason = ""
    try:
        if state is None:
            if log is not None:
                log.write(_LOG_HEADER)
            run.sample(log)
            run.write_frame(traj)
        with timed(timings, "md"):
            reason = _loop(run, dyn, traj, log, t_ref)
        if not reason and run.step % cfg.checkpoint_every:
            run.save_checkpoint(dyn)  # a finished run is never redone, only extended
    finally:
        if traj is not None:
            traj.close()
        if log is not None:
            log.close()
    return _result(run, atoms, calc, reason, timings)


def _loop(run: _Run, dyn: Any, traj, log, t_ref: float) -> str:
    """Integrate until ``cfg.steps``; return a blow-up reason or ``""``."""
    cfg = run.cfg
    bar = progress_bar(total=cfg.steps, desc=f"md {cfg.ensemble}")
    bar.update(run.step)
    try:
        return _steps(run, dyn, traj, log, t_ref, bar)
    finally:
        bar.close()


def _steps(run: _Run, dyn: Any, traj, log, t_ref: float, bar) -> str:
    """The steps of :func:`_loop`."""
    cfg = run.cfg
    while run.step < cfg.steps:
        try:
            dyn.step()
        except Exception as err:  # noqa: BLE001 - e.g. a neighbour list overflow: stop, keep data
            return f"step {run.step + 1} raised {type(err).__name__}: {err}"
        run.step += 1
        bar.update(1)
        run.note_domain()
        reason = run.blown_up(t_ref)
        if reason:
            run.write_frame(traj)
            return reason
        if run.step % cfg.sample_every == 0:
            run.sample(log)
        if run.step % cfg.traj_every == 0:
            run.write_frame(traj)
        if run.step % cfg.checkpoint_every == 0:
            run.save_checkpoint(dyn)
    return ""


def _frames(run: _Run) -> list[Atoms]:
    """Trajectory frames of the whole run (file, when there is one)."""
    path = run.path("md.traj")
    if path is None:
        return run.frames
    from ase.io import Trajectory

    with Trajectory(str(path)) as traj:
        return [frame for frame in traj]


def _result(run: _Run, atoms: Atoms, calc: Any, reason: str, timings: dict) -> MDResult:
    """Analyse the samples and frames of ``run``."""
    cfg, s = run.cfg, run.samples
    time_ps, etot = np.array(s["time_ps"]), np.array(s["etot"])
    drift, err = (None, None)
    if cfg.ensemble == "nve" and len(time_ps) >= 3:
        drift, err = linear_drift(time_ps, etot * 1e3)
    frames = [f for f in _frames(run) if np.all(np.isfinite(f.positions))]
    caps = [rdf_range(f, cfg.rdf_rmax) for f in frames[:1] + frames[-1:]]
    rmax, cap_warning = min(caps, default=(cfg.rdf_rmax, ""))
    bins = max(1, round(cfg.rdf_bins * rmax / cfg.rdf_rmax))  # keep the bin width
    r, g = rdf(frames, rmax, bins) if frames else (np.array([]), np.array([]))
    peak = first_peak(r, g) if len(r) and np.any(g > 0) else (None, None)
    temps = np.array(s["T"])
    warnings = [f"MD stopped at step {run.step}: {reason}"] if reason else []
    warnings += [cap_warning] if cap_warning else []
    warnings += run.domain_warnings()
    files = (
        {}
        if run.outdir is None
        else {
            k: str(run.outdir / v)
            for k, v in (
                ("trajectory", "md.traj"),
                ("trajectory_extxyz", "md.extxyz"),
                ("log", "md.log"),
                ("checkpoint", "checkpoint.json"),
                ("inputs", "inputs.json"),
            )
        }
    )
    return MDResult(
        units=dict(MD_UNITS),
        provenance=provenance(atoms, calc, dataclasses.asdict(cfg), timings),
        warnings=warnings,
        ensemble=cfg.ensemble,
        status="blown_up" if reason else "completed",
        stop_reason=reason,
        steps_requested=cfg.steps,
        steps_done=run.step,
        restarted_from_step=run.restarted_from,
        timestep_fs=cfg.timestep_fs,
        time_ps=time_ps.tolist(),
        etot_eV_per_atom=etot.tolist(),
        epot_eV_per_atom=list(s["epot"]),
        temperature_K=temps.tolist(),
        drift_meV_per_atom_per_ps=drift,
        drift_std_err=err,
        temperature_mean_K=float(temps.mean()) if len(temps) else float("nan"),
        temperature_std_K=float(temps.std()) if len(temps) else float("nan"),
        rdf_r_A=r.tolist(),
        rdf_g=g.tolist(),
        rdf_first_peak_A=peak[0],
        rdf_first_peak_height=peak[1],
        min_distance_A=closest_approach(frames, cfg.rdf_rmax),
        files=files,
    )


def plot_md(result: MDResult, path) -> None:
    """Total energy, temperature and RDF of an MD run."""
    fig, (ax1, ax2, ax3) = new_figure(1, 3, figsize=(13.0, 3.8))
    t = np.array(result.time_ps)
    e = np.array(result.etot_eV_per_atom, dtype=float)
    if len(e):
        ax1.plot(t, (e - e[0]) * 1e3, "-")
    ax1.set_xlabel("time (ps)")
    ax1.set_ylabel("E_tot - E_tot(0) (meV/atom)")
    if result.drift_meV_per_atom_per_ps is not None:
        ax1.set_title(f"drift {result.drift_meV_per_atom_per_ps:.3g} meV/atom/ps")
    ax2.plot(t, result.temperature_K, "-")
    ax2.set_xlabel("time (ps)")
    ax2.set_ylabel("T (K)")
    ax3.plot(result.rdf_r_A, result.rdf_g, "-")
    ax3.set_xlabel("r (A)")
    ax3.set_ylabel("g(r)")
    if result.rdf_first_peak_A is not None:
        ax3.set_title(f"first peak {result.rdf_first_peak_A:.3f} A")
    save_figure(fig, path)


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``pansim md``."""
    add_common_arguments(parser)
    parser.add_argument("--ensemble", choices=sorted(ENSEMBLES), default="nve", help="integrator")
    parser.add_argument("--steps", type=nonnegative_int, default=1000, help="MD steps")
    parser.add_argument("--timestep", type=positive_float, default=1.0, help="time step (fs)")
    parser.add_argument(
        "--temperature", type=nonnegative_float, default=300.0, help="target temperature (K)"
    )
    parser.add_argument(
        "--init-temperature",
        type=nonnegative_float,
        default=None,
        help="temperature (K) of the initial Maxwell-Boltzmann velocities; default: "
        "2 x --temperature for nve (a crystal started at 2T equilibrates near T by "
        "equipartition), --temperature for the thermostatted ensembles",
    )
    parser.add_argument("--pressure", type=float, default=0.0, help="pressure (GPa; npt only)")
    parser.add_argument(
        "--supercell",
        type=positive_int,
        nargs=3,
        default=[1, 1, 1],
        metavar=("NA", "NB", "NC"),
        help="repeat the structure NA x NB x NC times",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (velocities, thermostats)")
    parser.add_argument(
        "--traj-every", type=positive_int, default=10, help="steps between trajectory frames"
    )
    parser.add_argument(
        "--checkpoint-every", type=positive_int, default=100, help="steps between checkpoints"
    )
    parser.add_argument(
        "--min-distance",
        type=nonnegative_float,
        default=MDConfig.min_distance_A,
        help="stop when two atoms come closer than this (A; 0: never)",
    )
    parser.add_argument(
        "--max-temperature",
        type=positive_float,
        default=MDConfig.max_temperature_K,
        help="stop when the temperature exceeds this (K); also the highest accepted target",
    )
    parser.add_argument(
        "--no-restart",
        "--restart-fresh",
        "--overwrite",
        dest="no_restart",
        action="store_true",
        help="discard a run already in --out (its checkpoint and inputs) and start over; "
        "without it a run with the same inputs continues, one with other inputs is refused",
    )


def initial_temperature(ensemble: str, temperature: float, given: float | None) -> float:
    """The CLI's initial temperature: ``given``, else 2T for ``nve``, else T."""
    if given is not None:
        return given
    return 2.0 * temperature if ensemble == "nve" else temperature


def run(args: argparse.Namespace) -> int:
    """Run ``pansim md``; exit code 3 when the run stopped early (blown up, close contact)."""
    atoms = read_structure(args.structure) * tuple(args.supercell)
    if not args.no_restart and (Path(args.out) / "checkpoint.json").exists():
        print(f"restarting from {Path(args.out) / 'checkpoint.json'}")
    result = run_md(
        atoms,
        cli_calculator(args),
        outdir=args.out,
        restart=not args.no_restart,
        ensemble=args.ensemble,
        steps=args.steps,
        timestep_fs=args.timestep,
        temperature_K=args.temperature,
        init_temperature_K=initial_temperature(
            args.ensemble, args.temperature, args.init_temperature
        ),
        pressure_GPa=args.pressure,
        seed=args.seed,
        traj_every=args.traj_every,
        checkpoint_every=args.checkpoint_every,
        min_distance_A=args.min_distance,
        max_temperature_K=args.max_temperature,
    )
    write_outputs(result, args.out, plot_md)
    t_mean, t_std = result.temperature_mean_K, result.temperature_std_K
    print(f"status {result.status}; T = {t_mean:.1f} +- {t_std:.1f} K")
    if result.drift_meV_per_atom_per_ps is not None:
        drift, err = result.drift_meV_per_atom_per_ps, result.drift_std_err
        print(f"drift {drift:.4g} +- {err:.2g} meV/atom/ps")
    print(f"RDF first peak {result.rdf_first_peak_A} A")
    if result.status != "completed":
        print(
            f"pansim md: error: {result.stop_reason} (frames up to the stop kept in {args.out})",
            file=sys.stderr,
        )
    return 3 if result.status == "blown_up" else 0
