"""Issue 7 comparison: NequIP and Allegro, ``baseline`` vs ``pan+pgs``, Si and ethanol, 3 seeds.

Run from the repository root in the second environment::

    .venv-nequip/bin/python -m pansim_nequip.comparison plan             # dry run: data, commands
    .venv-nequip/bin/python -m pansim_nequip.comparison run              # trains what is missing
    .venv-nequip/bin/python -m pansim_nequip.comparison table            # evaluates finished runs

``plan`` prints the frame counts of ``data/<system>/{train,val,test}.extxyz`` and the
exact ``nequip-train`` command of every run, marked ``done`` or ``todo``, and starts
nothing. ``run`` calls those commands (``configs/nequip/<system>-<backbone>.yaml`` with
``variant=...  seed=...``) into ``results/nequip/<system>/<backbone>-<variant>-seed<k>/``
and marks a finished run with ``done.json`` (resumable: finished runs are skipped, an
interrupted one continues from its ``last.ckpt``).
``table`` evaluates every finished run on ``data/<system>/test.extxyz`` (labels
``REF_energy`` / ``REF_forces`` / ``REF_stress``) through nequip's ASE calculator with
the metrics of :func:`pansim.training.evaluate.metrics`, measures FLOPs
(``torch.utils.flop_counter`` rules, energy + forces) and median CPU time of one call
per model, and writes the ablation table of :mod:`lab.ablation` (same
metrics, units and FLOPs ratio), one system row group per ``system (backbone)``.
"""

from __future__ import annotations

import argparse
import json
import shlex
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
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from pansim.data.manifest import unfinished_labels, write_json_atomic

RUNS = Path("results/nequip")
CONFIGS = Path("configs/nequip")
DATA = Path("data")
SPLITS = ("train", "val", "test")
#: label keys of pansim's data files (docs/spec.md §3): energy, forces, stress
LABELS = ("REF_energy", "REF_forces", "REF_stress")


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

    def command(self, overrides: Sequence[str] = ()) -> list[str]:
        """The ``nequip-train`` command line of this run (``overrides``: Hydra overrides)."""
        return [
            str(Path(sys.executable).parent / "nequip-train"),
            "-cp", str(CONFIGS.resolve()), "-cn", self.config_name,
            f"variant={self.variant}", f"seed={self.seed}", f"hydra.run.dir={self.out_dir}",
            *overrides,
        ]  # fmt: skip


def plan(
    systems: Sequence[str], backbones: Sequence[str], variants: Sequence[str], seeds: Sequence[int]
) -> list[Job]:
    """All jobs of the comparison, in a fixed order."""
    return [Job(s, b, v, k) for s in systems for b in backbones for k in seeds for v in variants]


def resume_checkpoint(job: Job) -> Path | None:
    """``last.ckpt`` of an interrupted run of ``job`` if it loads, else ``None``.

    The configs save ``last.ckpt`` after every epoch (``save_last``). A file that does
    not load (a run killed while writing it) is renamed ``last.ckpt.corrupt`` and the
    run starts over, with a message.
    """
    last = job.out_dir / "last.ckpt"
    if job.done or not last.exists():
        return None
    problem = checkpoint_problem(last)
    if problem:
        last.replace(last.with_name("last.ckpt.corrupt"))
        print(f"[comparison] {last} does not load ({problem}); starting the run over", flush=True)
        return None
    return last


def checkpoint_problem(path: Path) -> str | None:
    """Why a ``torch.save`` file is truncated or damaged, or ``None``; nothing is unpickled.

    ``torch.save`` writes a zip archive whose directory sits at the end: a file
    cut short has none, and every member's CRC is checked. (Loading it to find
    out, with ``weights_only=False``, would run whatever code the pickle holds.)
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                return f"member {bad} fails its CRC check"
            if not any(name.endswith("data.pkl") for name in archive.namelist()):
                return "not a torch checkpoint (no data.pkl)"
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _segments(job: Job) -> Path:
    return job.out_dir / "segments.json"


def train(job: Job, overrides: Sequence[str] = ()) -> float:
    """Run ``nequip-train`` for ``job``; returns the training wall time (s), writes ``done.json``.

    An interrupted run continues from its ``last.ckpt`` (nequip's ``ckpt_path``: model,
    optimizer, scheduler, EMA and epoch). The wall time sums the segments of the run, each
    counted up to its last checkpoint (work after it was lost and is redone).
    """
    resume = resume_checkpoint(job)
    segments = json.loads(_segments(job).read_text()) if _segments(job).exists() else []
    if segments and "end" not in segments[-1]:
        if resume is None:
            segments = []  # nothing kept from the interrupted segment: start over
        else:
            segments[-1]["end"] = resume.stat().st_mtime
    job.out_dir.mkdir(parents=True, exist_ok=True)
    segments.append({"start": time.time(), "resumed_from": str(resume) if resume else None})
    write_json_atomic(_segments(job), segments)
    extra = [f"++ckpt_path={resume.resolve()}"] if resume else []
    subprocess.run(job.command([*overrides, *extra]), check=True)
    segments[-1]["end"] = time.time()
    write_json_atomic(_segments(job), segments)
    seconds = sum(s["end"] - s["start"] for s in segments)
    config = (job.out_dir / ".hydra" / "config.yaml").read_text()
    epochs = int(
        next(ln.split(":")[1] for ln in config.splitlines() if ln.startswith("max_epochs"))
    )
    summary = {
        "train_seconds": seconds,
        "epochs": epochs,
        "segments": len(segments),
        "overrides": list(overrides),
    }
    write_json_atomic(job.out_dir / "done.json", summary)
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


def labelled(frames: Sequence[Atoms]) -> list[Any]:
    """A pansim :class:`~pansim.training.data.Sample` per frame (labels :data:`LABELS`).

    The samples carry no graph (the metrics need only the labels); stress labels are
    kept for periodic frames only, the ones :func:`predictions` gives a stress for.
    """
    from pansim.training.data import Sample, extract_labels

    samples = []
    for index, atoms in enumerate(frames):
        energy, forces, stress = extract_labels(atoms, LABELS, f"test frame {index}")
        stress = stress if bool(np.all(atoms.pbc)) else None
        samples.append(Sample({}, atoms.numbers.copy(), energy, forces, stress))
    return samples


def metrics(frames: Sequence[Atoms], preds: Sequence[dict]) -> dict[str, Any]:
    """:func:`pansim.training.evaluate.metrics` of ``preds`` (meV/atom, meV/A, GPa)."""
    from pansim.training.evaluate import metrics as pansim_metrics

    return pansim_metrics(labelled(frames), preds)


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


def costs(calcs: dict[Any, Any], atoms: Atoms, repeats: int = 30, warmup: int = 3) -> dict:
    """FLOPs and median CPU time (s) of one energy+forces call per model, interleaved.

    Timed as the MACE route's ablation table is
    (:func:`lab.timing.interleaved`, CPU time).
    """
    from lab.timing import interleaved

    data = {k: c.atoms_to_data(atoms) for k, c in calcs.items()}
    calls = {k: (lambda c=c, d=data[k]: c.call_model(dict(d))) for k, c in calcs.items()}
    times = {k: s["cpu"] for k, s in interleaved(calls, repeats, warmup).items()}
    out = {}
    for key, calc in calcs.items():
        counter = _FlopCounter()
        with counter:
            calc.call_model(dict(data[key]))
        out[key] = {
            "flops": float(counter.total),
            "seconds": statistics.median(times[key]),
        }
    return out


#: stand-ins for ``${training_data_stats:...}`` when a model is built without training data:
#: they set constants only (no FLOPs), so cost measurements do not depend on them
PLACEHOLDER_STATS = {
    "num_neighbors_mean": 10.0,
    "per_atom_energy_mean": 0.0,
    "forces_rms": 1.0,
    "per_type_forces_rms": 1.0,
    "c_max": 12.0,
}


def build_from_config(job: Job, overrides: Sequence[str] = ()) -> Any:
    """The untrained model of ``job``, built from its config's model section as nequip-train does.

    ``overrides`` are Hydra-style ``key=value`` (plain keys only); the data statistics
    are :data:`PLACEHOLDER_STATS`. Returns a nequip ``GraphModel``.
    """
    from hydra.utils import get_method
    from nequip.utils.global_state import set_global_state
    from omegaconf import OmegaConf

    config = OmegaConf.load(CONFIGS / f"{job.config_name}.yaml")
    plain = [o.lstrip("+") for o in overrides if "." not in o.split("=")[0]]
    config.merge_with_dotlist([f"variant={job.variant}", f"seed={job.seed}", *plain])
    OmegaConf.register_new_resolver("training_data_stats", PLACEHOLDER_STATS.get, replace=True)
    try:
        model = OmegaConf.to_container(config.training_module.model, resolve=True)
    finally:
        OmegaConf.clear_resolver("training_data_stats")
    set_global_state()
    return get_method(model.pop("_target_"))(**model)


def measure(
    system: str,
    backbone: str,
    variants: Sequence[str],
    atoms: Atoms,
    overrides: Sequence[str] = (),
    repeats: int = 10,
) -> list[dict[str, Any]]:
    """FLOPs and wall time (:func:`costs`) of each variant of one config on ``atoms``.

    The models are untrained and share the seed; ratios are relative to ``variants[0]``.
    """
    from pansim_nequip.calculator import calculator_from_model

    calcs = {
        v: calculator_from_model(build_from_config(Job(system, backbone, v, 0), overrides))
        for v in variants
    }
    first = next(iter(calcs.values()))
    edges = int(first.atoms_to_data(atoms)["edge_index"].shape[1])
    measured = costs(calcs, atoms, repeats=repeats, warmup=min(3, repeats))
    base = measured[variants[0]]
    return [
        {
            "system": system, "backbone": backbone, "variant": v, "atoms": len(atoms),
            "edges": edges, **m,
            "flops_ratio": m["flops"] / base["flops"], "time_ratio": m["seconds"] / base["seconds"],
        }
        for v, m in measured.items()
    ]  # fmt: skip


def evaluate(jobs: Sequence[Job], frames: Sequence[Atoms]) -> list[dict[str, Any]]:
    """Ablation rows (the layout of :func:`lab.ablation.evaluate_jobs`)."""
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
    from lab import ablation

    rows = []
    for key in sorted({(j.system, j.backbone) for j in jobs}):
        done = [j for j in jobs if (j.system, j.backbone) == key and j.done]
        if done:
            rows += evaluate(done, read(DATA / key[0] / "test.extxyz", ":"))
    if not rows:
        return None
    seeds = sorted({r["seed"] for r in rows})
    md, _ = ablation.write(ablation.aggregate(rows), rows, out, f"Seeds included: {seeds}.")
    return md


def data_report(systems: Sequence[str]) -> list[str]:
    """One line per data file of ``systems``: its path and frame count, or what is wrong."""
    lines = []
    for system in systems:
        for split in SPLITS:
            path = DATA / system / f"{split}.extxyz"
            if not path.exists():
                lines.append(f"missing  {path}")
                continue
            frames = read(path, ":") if path.stat().st_size else []
            lines.append(f"{'empty' if not frames else 'ok':7}  {path}: {len(frames)} frames")
    return lines


def _print_plan(args: argparse.Namespace, jobs: Sequence[Job], overrides: Sequence[str]) -> int:
    print("\n".join(data_report(args.systems)))
    for job in jobs:
        print(f"{'done' if job.done else 'todo'}  {shlex.join(job.command(overrides))}")
    return 0


def _run(args: argparse.Namespace, jobs: Sequence[Job], overrides: Sequence[str]) -> int:
    # a run on a partly labelled dataset would count as done and never be redone
    waiting = {s: unfinished_labels(DATA / s, s) for s in {job.system for job in jobs}}
    if not args.allow_incomplete_data:
        for system, reason in sorted(waiting.items()):
            if reason:
                print(f"skipping {system}: {reason}", file=sys.stderr)
        jobs = [job for job in jobs if not waiting[job.system]]
    for job in jobs:
        if not job.done:
            print(f"[comparison] {shlex.join(job.command(overrides))}", flush=True)
            train(job, overrides)
    return 0


def _table(args: argparse.Namespace, jobs: Sequence[Job], overrides: Sequence[str]) -> int:
    md = table(jobs, args.out)
    if md is None:
        print("no finished runs", file=sys.stderr)
        return 1
    print(md.read_text())
    return 0


def _flops(args: argparse.Namespace, jobs: Sequence[Job], overrides: Sequence[str]) -> int:
    print(
        "| system | backbone | atoms | edges | variant | MFLOPs | FLOPs ratio | ms | time ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for system in args.systems:
        atoms = read(DATA / system / "test.extxyz", 0)
        if bool(np.all(atoms.pbc)):
            atoms = atoms.repeat(args.supercell)
        for backbone in args.backbones:
            for r in measure(system, backbone, args.variants, atoms, overrides):
                print(
                    f"| {system} | {backbone} | {r['atoms']} | {r['edges']} | {r['variant']} "
                    f"| {r['flops'] / 1e6:.2f} | {r['flops_ratio']:.4f} "
                    f"| {1e3 * r['seconds']:.1f} | {r['time_ratio']:.3f} |"
                )
    return 0


#: sub-command -> (action, help)
COMMANDS = {
    "plan": (_print_plan, "dry run: data files, then every run's nequip-train command (done/todo)"),
    "run": (_run, "train the runs not done yet, in the order plan prints them"),
    "table": (_table, "evaluate finished runs; write <out>/ablation.{md,json}"),
    "flops": (_flops, "FLOPs and time of untrained models at the configs' sizes (test frame 0)"),
}


def main(argv: list[str] | None = None) -> int:
    """Command line: ``plan`` (dry run), ``run`` (train missing runs), ``table`` (evaluate)."""
    epilog = "\n".join(f"  {name:6} {text}" for name, (_, text) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="python -m pansim_nequip.comparison",
        description=__doc__.splitlines()[0],
        epilog=f"commands:\n{epilog}\n\nHydra overrides for every run follow a '--', "
        "e.g. -- max_epochs=50",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=list(COMMANDS))
    parser.add_argument("--systems", nargs="+", default=["si", "ethanol"])
    parser.add_argument("--backbones", nargs="+", default=["nequip", "allegro"])
    parser.add_argument("--variants", nargs="+", default=["baseline", "pan+pgs"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=RUNS)
    parser.add_argument(
        "--allow-incomplete-data", action="store_true",
        help="run: also train systems whose dataset still has pending labels",
    )  # fmt: skip
    parser.add_argument("--supercell", type=int, default=1, help="flops: repeat periodic cells")
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args, overrides = parser.parse_args(argv[:cut]), argv[cut + 1 :]
    jobs = plan(args.systems, args.backbones, args.variants, args.seeds)
    action, _ = COMMANDS[args.command]
    return action(args, jobs, overrides)


if __name__ == "__main__":
    raise SystemExit(main())
