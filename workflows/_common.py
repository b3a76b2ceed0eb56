"""Helpers shared by every workflow: results, provenance, files, plots, calculators, relaxation.

Nothing here changes global state at import time: plots are drawn on a bare
:class:`matplotlib.figure.Figure` (Agg canvas), never through ``pyplot``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from ase import Atoms

from pansim.files import atomic_path
from pansim.files import write_text_atomic as atomic_write_text
from pansim.provenance import versions  # noqa: F401 - one definition, re-exported

T = TypeVar("T", bound="WorkflowResult")


# --------------------------------------------------------------------------- JSON results
def to_jsonable(obj: Any) -> Any:
    """Convert numpy arrays/scalars, paths and nested containers to plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if np.isfinite(value) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


@dataclasses.dataclass
class WorkflowResult:
    """Base of every workflow result: JSON round trip, units and provenance.

    Subclasses add their own fields; ``units`` maps a field name to its unit and
    ``provenance`` holds versions, inputs and timings (see :func:`provenance`).
    """

    units: dict[str, str] = dataclasses.field(default_factory=dict)
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dictionary of every field (arrays become lists, NaN becomes null)."""
        return to_jsonable(dataclasses.asdict(self))

    def to_json(self, path: str | os.PathLike | None = None, indent: int = 2) -> str:
        """Serialise to JSON text; when ``path`` is given also write it atomically."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            atomic_write_text(path, text + "\n")
        return text

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Rebuild a result from :meth:`to_dict` output; unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_json(cls: type[T], path: str | os.PathLike) -> T:
        """Read a result written by :meth:`to_json`."""
        return cls.from_dict(json.loads(Path(path).read_text()))


# --------------------------------------------------------------------------- provenance


def evaluate_forces(
    structures: list[Atoms], calc: Any, desc: str = "displaced structures"
) -> np.ndarray:
    """Forces ``[n_structures, n_atoms, 3]`` (eV/A) of same-size structures.

    One batched call when ``calc`` has ``batch_evaluate`` (PANCalculator, the DFT
    point store); otherwise one ``get_forces`` per structure, on copies (the
    structures are never modified), with a progress bar labelled ``desc``.
    """
    batch = getattr(calc, "batch_evaluate", None)
    if callable(batch):
        return np.array([r["forces"] for r in batch(structures)])
    from pansim.cli_common import progress

    steps = progress(structures, total=len(structures), desc=desc)
    return np.array([with_calc(atoms, calc).get_forces() for atoms in steps])


def calculator_info(calc: Any) -> dict[str, Any]:
    """Name and model provenance (name, file, sha256, variant, backbone, dtype) of a calculator."""
    from pansim.provenance import calculator_provenance

    info = {"class": f"{type(calc).__module__}.{type(calc).__name__}"}
    for attr in ("model_name", "model_path", "name"):
        value = getattr(calc, attr, None)
        if isinstance(value, (str, Path)):
            info[attr] = str(value)
    return {**info, **calculator_provenance(calc)}


def structure_info(atoms: Atoms) -> dict[str, Any]:
    """Formula, size, cell (A) and periodicity of a structure."""
    return {
        "formula": atoms.get_chemical_formula(),
        "n_atoms": len(atoms),
        "cell_A": atoms.cell.array,
        "pbc": atoms.pbc,
    }


def provenance(
    atoms: Atoms, calc: Any, inputs: dict[str, Any], timings: dict[str, float]
) -> dict[str, Any]:
    """Provenance block stored in every result: versions, inputs, timings (s), structure."""
    return to_jsonable(
        {
            "versions": versions(),
            "calculator": calculator_info(calc),
            "structure": structure_info(atoms),
            "inputs": inputs,
            "timings_s": timings,
            "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
    )


@contextmanager
def timed(timings: dict[str, float], key: str) -> Iterator[None]:
    """Add the wall time (s) of the ``with`` block to ``timings[key]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - start


# --------------------------------------------------------------------------- plots
def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (6.0, 4.0)):
    """A pyplot-free figure (Agg canvas) and its axes; nothing global is touched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="tight")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols)


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Save a figure as PNG (atomic rename) and return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return path


# --------------------------------------------------------------------------- calculators
def _emt(**_: Any):
    from ase.calculators.emt import EMT

    return EMT()


def _lj(**_: Any):
    """Argon-like Lennard-Jones with a smooth cutoff (sigma 3.4 A, epsilon 0.0104 eV)."""
    from ase.calculators.lj import LennardJones

    return LennardJones(sigma=3.4, epsilon=0.0104, rc=3.0 * 3.4, smooth=True)


#: ``--model`` names served by ASE itself (tests, demos); anything else goes to PANCalculator.
BUILTIN_CALCULATORS: dict[str, Callable[..., Any]] = {"emt": _emt, "lj": _lj}


def load_calculator(model: str, *, device: str = "cpu", dtype: str = "float64") -> Any:
    """Return an ASE calculator for ``model``: a built-in name, a registry name or a path.

    ``emt`` and ``lj`` give ASE's EMT and a smooth Lennard-Jones; every other value
    is passed to ``pansim.PANCalculator(model=..., device=..., default_dtype=...)``.
    """
    factory = BUILTIN_CALCULATORS.get(model.lower())
    if factory is not None:
        return factory(device=device)
    import pansim

    return pansim.PANCalculator(model=model, device=device, default_dtype=dtype)


def has_stress(calc: Any) -> bool:
    """Whether an ASE calculator declares ``stress`` among its implemented properties."""
    return "stress" in getattr(calc, "implemented_properties", ())


def with_calc(atoms: Atoms, calc: Any) -> Atoms:
    """A copy of ``atoms`` with ``calc`` attached; the caller's object is untouched."""
    out = atoms.copy()
    out.calc = calc
    return out


# --------------------------------------------------------------------------- relaxation
@dataclasses.dataclass
class Relaxation:
    """Outcome of :func:`relax`: the relaxed copy and whether it converged."""

    atoms: Atoms
    converged: bool
    steps: int
    fmax: float
    max_force: float

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (without the structure)."""
        return {
            "converged": bool(self.converged),
            "steps": int(self.steps),
            "fmax_eV_per_A": self.fmax,
            "max_force_eV_per_A": float(self.max_force),
        }


def relax(
    atoms: Atoms,
    calc: Any,
    *,
    fmax: float = 1e-3,
    steps: int = 500,
    cell: bool = False,
    symmetry: bool = True,
) -> Relaxation:
    """Relax a copy of ``atoms`` (positions; the cell too when ``cell``) in at most ``steps`` steps.

    Parameters
    ----------
    fmax : float
        Force (eV/A) and, with ``cell``, stress-times-volume convergence criterion.
    steps : int
        Hard limit on optimiser steps; a run that hits it returns ``converged=False``.
    symmetry : bool
        Keep the space group with :class:`ase.constraints.FixSymmetry`.
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    work = with_calc(atoms, calc)
    if symmetry:
        from ase.constraints import FixSymmetry

        work.set_constraint(FixSymmetry(work))
    if cell and not has_stress(calc):
        raise ValueError(f"{type(calc).__name__} has no stress: cannot relax the cell")
    target = FrechetCellFilter(work) if cell else work
    opt = BFGS(target, logfile=None)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    max_force = float(np.sqrt((target.get_forces() ** 2).sum(axis=1)).max())
    work.set_constraint()
    return Relaxation(work, converged, int(opt.nsteps), fmax, max_force)


def prepare_structure(
    atoms: Atoms,
    calc: Any,
    *,
    enabled: bool,
    cell: bool,
    fmax: float,
    steps: int,
    timings: dict[str, float],
    warnings: list[str],
    symmetry: bool = True,
) -> tuple[Atoms, dict[str, Any]]:
    """The starting structure of a workflow: a relaxed copy (or a plain copy) and its summary.

    A failed relaxation is recorded in ``warnings`` and the run goes on from where it stopped.
    ``cell`` and ``symmetry`` are passed to :func:`relax`.
    """
    if not enabled:
        start = atoms.copy()
        return start, {"performed": False, **_residual_stress(start, calc, warnings)}
    with timed(timings, "relax"):
        rel = relax(atoms, calc, fmax=fmax, steps=steps, cell=cell, symmetry=symmetry)
    if not rel.converged:
        warnings.append(
            f"relaxation did not converge in {steps} steps (max force {rel.max_force:.2e} eV/A)"
        )
    summary = {"performed": True, "cell": cell, **rel.summary()}
    return rel.atoms, {**summary, **_residual_stress(rel.atoms, calc, warnings)}


#: residual stress (GPa) above which a workflow warns that its structure is not at zero pressure
RESIDUAL_STRESS_WARN_GPA = 0.1


def _residual_stress(atoms: Atoms, calc: Any, warnings: list[str]) -> dict[str, Any]:
    """``{"residual_stress_GPa": Voigt list}`` of the starting structure (periodic, with stress).

    Adds a warning when its largest component exceeds :data:`RESIDUAL_STRESS_WARN_GPA`.
    """
    if not (np.all(atoms.pbc) and has_stress(calc)):
        return {}
    from ase.units import GPa

    stress = with_calc(atoms, calc).get_stress() / GPa
    worst = float(stress[np.argmax(np.abs(stress))])
    if abs(worst) > RESIDUAL_STRESS_WARN_GPA:
        warnings.append(
            f"residual stress {worst:+.2f} GPa in the starting structure (the cell is not at "
            "zero pressure for this model; relax the cell to remove it)"
        )
    return {"residual_stress_GPa": stress.tolist()}


# --------------------------------------------------------------------------- CLI
class ConfigAction(argparse.Action):
    """``--config FILE.yaml``: fill options left at their defaults; the command line wins.

    Keys are option names (``max-steps`` or ``max_steps``).
    """

    def __call__(self, parser, namespace, values, option_string=None):
        import yaml

        data = yaml.safe_load(Path(values).read_text()) or {}
        for key, value in data.items():
            dest = str(key).replace("-", "_")
            if not hasattr(namespace, dest):
                parser.error(f"unknown option {key!r} in {values}")
            if getattr(namespace, dest) == parser.get_default(dest):
                setattr(namespace, dest, value)
        setattr(namespace, self.dest, values)


def add_common_arguments(parser: argparse.ArgumentParser, *, structure: bool = True) -> None:
    """Options of every workflow subcommand.

    --config, --model (default: the shipped default model), --structure, --out
    (default: a new ``runs/<command>-<model>-<time>/``), --device, --dtype, --threads.
    """
    from pansim.cli_common import add_model_arguments, add_out_argument

    parser.add_argument(
        "--config", action=ConfigAction, help="YAML file of options (command line wins)"
    )
    add_model_arguments(parser)
    if structure:
        parser.add_argument("--structure", help="structure file readable by ase.io.read")
    add_out_argument(parser)


def cli_calculator(args: argparse.Namespace) -> Any:
    """The calculator of a subcommand's ``--model``, ``--device`` and ``--dtype`` (logged)."""
    import logging

    from pansim.provenance import calculator_provenance

    calc = load_calculator(args.model, device=args.device, dtype=getattr(args, "dtype", "float64"))
    logging.getLogger("pansim").info("model: %s", calculator_provenance(calc))
    return calc


def read_structure(path: str | os.PathLike | None) -> Atoms:
    """Read the first frame of a structure file (errors name the file and the problem).

    A missing, unreadable or empty file raises :class:`pansim.cli_common.CLIError`.
    """
    from pansim.cli_common import read_structure as read_checked

    return read_checked(path, index=0)


def write_outputs(result: WorkflowResult, out: str | os.PathLike, plot: Callable | None) -> Path:
    """Write ``OUT/result.json`` and, when ``plot`` is given, ``OUT/plot.png``; print a summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "result.json"
    result.to_json(path)
    if plot is not None:
        plot(result, out / "plot.png")
    print(f"wrote {path}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return path
