"""Issue 7 comparison: NequIP and Allegro, ``baseline`` vs ``pan+pgs``, Si and ethanol, 3 seeds.

Run from the repository root in the second environment::

    .venv-nequip/bin/python -m pansim_nequip.comparison run              # trains what is missing
    .venv-nequip/bin/python -m pansim_nequip.comparison table            # evaluates finished runs

``run`` calls ``nequip-train`` with ``configs/nequip/<system>-<backbone>.yaml``
(``variant=...  seed=...``) into ``runs/nequip/<system>/<backbone>-<variant>-seed<k>/``
and marks a finished run with ``done.json`` (resumable: finished runs are skipped).
``table`` evaluates every finished run on ``data/<system>/test.xyz`` (labels
``REF_energy`` / ``REF_forces`` / ``REF_stress``) through nequip's ASE calculator,
measures FLOPs (``torch.utils.flop_counter``, energy + forces) and median wall time
of one call per model, and writes the ablation table of :mod:`pansim.training.ablation`
(same metrics, units and FLOPs ratio), one system row group per ``system (backbone)``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.io import read
from ase.units import GPa
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

RUNS = Path("runs/nequip")
CONFIGS = Path("configs/nequip")
DATA = Path("data")


@dataclass(frozen=True)
class Job:
    """One training run (paths relative to the repository root)."""

    system: str
    backbone: str
    variant: str
    seed: int

    @property
    def config_name(self) -> str:
        """Name of the config in ``configs/nequip`` (without ``.yaml``)."""
        return f"{self.system}-{self.backbone}"

    @property
    def out_dir(self) -> Path:
        """Run folder (checkpoint ``best.ckpt``, logs, ``done.json``)."""
        return RUNS / self.system / f"{self.backbone}-{self.variant}-seed{self.seed}"

    @property
    def done(self) -> bool:
        """Whether the run finished (``done.json`` written after training)."""
        return (self.out_dir / "done.json").exists()


def plan(
    systems: Sequence[str], backbones: Sequence[str], variants: Sequence[str], seeds: Sequence[int]
) -> list[Job]:
    """All jobs of the comparison, in a fixed order."""
    return [Job(s, b, v, k) for s in systems for b in backbones for k in seeds for v in variants]


def train(job: Job, overrides: Sequence[str] = ()) -> float:
    """Run ``nequip-train`` for ``job``; returns the wall time (s) and writes ``done.json``."""
    command = [
        str(Path(sys.executable).parent / "nequip-train"),
        "-cp", str(CONFIGS.resolve()), "-cn", job.config_name,
        f"variant={job.variant}", f"seed={job.seed}", f"hydra.run.dir={job.out_dir}",
        *overrides,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    config = (job.out_dir / ".hydra" / "config.yaml").read_text()
    epochs = int(
        next(ln.split(":")[1] for ln in config.splitlines() if ln.startswith("max_epochs"))
    )
    summary = {"train_seconds": seconds, "epochs": epochs, "overrides": list(overrides)}
    (job.out_dir / "done.json").write_text(json.dumps(summary, indent=1))
    return seconds


def predictions(calc: Any, frames: Sequence[Atoms]) -> list[dict[str, Any]]:
    """Energy (eV), forces (eV/A) and, for periodic frames, stress (3x3, eV/A^3) of ``calc``."""
    out = []
    for atoms in frames:
        work = atoms.copy()
        work.calc = calc
        periodic = bool(np.all(work.pbc))
        out.append(
            {
                "energy": work.get_potential_energy(),
                "forces": work.get_forces(),
                "stress": work.get_stress(voigt=False) if periodic else None,
            }
        )
    return out


def _mae_rmse(errors: np.ndarray, scale: float) -> dict[str, float | None]:
    if errors.size == 0:
        return {"mae": None, "rmse": None}
    return {
        "mae": float(scale * np.mean(np.abs(errors))),
        "rmse": float(scale * np.sqrt(np.mean(errors**2))),
    }


def metrics(frames: Sequence[Atoms], preds: Sequence[dict]) -> dict[str, Any]:
    """MAE / RMSE: ``energy_per_atom`` (meV/atom), ``forces`` (meV/A), ``stress`` (GPa)."""
    pairs = list(zip(frames, preds, strict=True))
    e = np.array([(p["energy"] - a.info["REF_energy"]) / len(a) for a, p in pairs])
    f = np.concatenate([p["forces"] - a.arrays["REF_forces"] for a, p in pairs])
    s = [
        np.asarray(p["stress"]) - np.asarray(a.info["REF_stress"]).reshape(3, 3)
        for a, p in pairs
        if p["stress"] is not None and "REF_stress" in a.info
    ]
    return {
        "energy_per_atom": _mae_rmse(e, 1e3),
        "forces": _mae_rmse(f.ravel(), 1e3),
        "stress": _mae_rmse(np.concatenate([x.ravel() for x in s]) if s else np.zeros(0), 1 / GPa),
    }


class _FlopCounter(TorchDispatchMode):
    """FLOPs of the ops ``torch.utils.flop_counter`` knows (matrix products), no module hooks.

    ``FlopCounterMode`` tracks modules with backward hooks, which nequip's
    ``autograd.grad`` force call refuses; the counting rules are the same.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: D105
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        rule = flop_registry.get(func._overloadpacket)
        if rule is not None:
            self.total += int(rule(*args, **kwargs, out_val=out))
        return out


def costs(calcs: dict[Any, Any], atoms: Atoms, repeats: int = 10, warmup: int = 3) -> dict:
    """FLOPs and median wall time (s) of one energy+forces call per model, interleaved."""
    data = {k: c.atoms_to_data(atoms) for k, c in calcs.items()}
    times: dict = {k: [] for k in calcs}
    for _ in range(warmup + repeats):
        for key, calc in calcs.items():
            start = time.perf_counter()
            calc.call_model(dict(data[key]))
            times[key].append(time.perf_counter() - start)
    out = {}
    for key, calc in calcs.items():
        counter = _FlopCounter()
        with counter:
            calc.call_model(dict(data[key]))
        out[key] = {
            "flops": float(counter.total),
            "seconds": statistics.median(times[key][warmup:]),
        }
    return out


def evaluate(jobs: Sequence[Job], frames: Sequence[Atoms]) -> list[dict[str, Any]]:
    """Ablation rows (the layout of :func:`pansim.training.ablation.evaluate_jobs`)."""
    from pansim_nequip.calculator import load_calculator

    calcs = {job: load_calculator(job.out_dir / "best.ckpt") for job in jobs}
    measured = costs(calcs, frames[0])
    rows = []
    for job, calc in calcs.items():
        summary = json.loads((job.out_dir / "done.json").read_text())
        rows.append(
            {
                "system": f"{job.system} ({job.backbone})",
                "variant": job.variant,
                "seed": job.seed,
                "epochs": summary["epochs"],
                "train_seconds": summary["train_seconds"],
                "metrics": metrics(frames, predictions(calc, frames)),
                **measured[job],
            }
        )
    return rows


def table(jobs: Sequence[Job], out: Path) -> Path | None:
    """Evaluate the finished ``jobs``; write ``ablation.md`` / ``ablation.json`` into ``out``."""
    from pansim.training import ablation

    rows = []
    for key in sorted({(j.system, j.backbone) for j in jobs}):
        done = [j for j in jobs if (j.system, j.backbone) == key and j.done]
        if done:
            rows += evaluate(done, read(DATA / key[0] / "test.xyz", ":"))
    if not rows:
        return None
    seeds = sorted({r["seed"] for r in rows})
    md, _ = ablation.write(ablation.aggregate(rows), rows, out, f"Seeds included: {seeds}.")
    return md


def main(argv: list[str] | None = None) -> int:
    """Command line: ``run`` (train missing runs) or ``table`` (evaluate finished runs)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "table", "plan"])
    parser.add_argument("--systems", nargs="+", default=["si", "ethanol"])
    parser.add_argument("--backbones", nargs="+", default=["nequip", "allegro"])
    parser.add_argument("--variants", nargs="+", default=["baseline", "pan+pgs"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("results/ablation-nequip"))
    parser.epilog = "Hydra overrides for every run follow a '--', e.g. -- max_epochs=50"
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args, overrides = parser.parse_args(argv[:cut]), argv[cut + 1 :]
    jobs = plan(args.systems, args.backbones, args.variants, args.seeds)
    if args.command == "plan":
        for job in jobs:
            print(f"{'done' if job.done else 'todo'}  {job.out_dir}")
    elif args.command == "run":
        for job in jobs:
            if not job.done:
                print(f"[comparison] training {job.out_dir}", flush=True)
                train(job, overrides)
    else:
        md = table(jobs, args.out)
        if md is None:
            print("no finished runs", file=sys.stderr)
            return 1
        print(md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
