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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units

from workflows._common import (
    WorkflowResult,
    add_common_arguments,
    atomic_write_text,
    load_calculator,
    new_figure,
    provenance,
    read_structure,
    save_figure,
    timed,
    to_jsonable,
    with_calc,
    write_outputs,
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
    """Options of :func:`run_md`; times in fs, temperatures in K, pressure in GPa."""

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

        from pansim._io import atomic_path

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
        return ""


def _initial_velocities(run: _Run) -> None:
    """Maxwell-Boltzmann momenta at ``init_temperature_K`` unless the structure has momenta."""
    from ase.md.velocitydistribution import Stationary

    from pansim._compat import thermalize

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
    """
    from ase.io import Trajectory

    cfg = dataclasses.replace(config or MDConfig(), **options)
    if cfg.ensemble not in ENSEMBLES:
        raise ValueError(f"unknown ensemble {cfg.ensemble!r}; choose from {sorted(ENSEMBLES)}")
    out = None if outdir is None else Path(outdir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
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
    finally:
        if traj is not None:
            traj.close()
        if log is not None:
            log.close()
    return _result(run, atoms, calc, reason, timings)


def _loop(run: _Run, dyn: Any, traj, log, t_ref: float) -> str:
    """Integrate until ``cfg.steps``; return a blow-up reason or ``""``."""
    cfg = run.cfg
    while run.step < cfg.steps:
        try:
            dyn.step()
        except Exception as err:  # noqa: BLE001 - e.g. a neighbour list overflow: stop, keep data
            return f"step {run.step + 1} raised {type(err).__name__}: {err}"
        run.step += 1
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
    r, g = rdf(frames, cfg.rdf_rmax, cfg.rdf_bins) if frames else (np.array([]), np.array([]))
    peak = first_peak(r, g) if len(r) else (None, None)
    temps = np.array(s["T"])
    warnings = [f"MD stopped at step {run.step}: {reason}"] if reason else []
    files = (
        {}
        if run.outdir is None
        else {
            k: str(run.outdir / v)
            for k, v in (
                ("trajectory", "md.traj"),
                ("log", "md.log"),
                ("checkpoint", "checkpoint.json"),
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
    parser.add_argument("--ensemble", choices=sorted(ENSEMBLES), default="nve")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--timestep", type=float, default=1.0, help="fs")
    parser.add_argument("--temperature", type=float, default=300.0, help="K")
    parser.add_argument("--pressure", type=float, default=0.0, help="GPa (npt)")
    parser.add_argument("--supercell", type=int, nargs=3, default=[1, 1, 1])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--traj-every", type=int, default=10)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--no-restart", action="store_true", help="ignore an existing checkpoint")


def run(args: argparse.Namespace) -> int:
    """Run ``pansim md``; exit code 3 when the run blew up."""
    atoms = read_structure(args.structure) * tuple(args.supercell)
    if not args.no_restart and (Path(args.out) / "checkpoint.json").exists():
        print(f"restarting from {Path(args.out) / 'checkpoint.json'}")
    result = run_md(
        atoms,
        load_calculator(args.model, device=args.device),
        outdir=args.out,
        restart=not args.no_restart,
        ensemble=args.ensemble,
        steps=args.steps,
        timestep_fs=args.timestep,
        temperature_K=args.temperature,
        pressure_GPa=args.pressure,
        seed=args.seed,
        traj_every=args.traj_every,
        checkpoint_every=args.checkpoint_every,
    )
    write_outputs(result, args.out, plot_md)
    t_mean, t_std = result.temperature_mean_K, result.temperature_std_K
    print(f"status {result.status}; T = {t_mean:.1f} +- {t_std:.1f} K")
    if result.drift_meV_per_atom_per_ps is not None:
        drift, err = result.drift_meV_per_atom_per_ps, result.drift_std_err
        print(f"drift {drift:.4g} +- {err:.2g} meV/atom/ps")
    print(f"RDF first peak {result.rdf_first_peak_A} A")
    return 3 if result.status == "blown_up" else 0
