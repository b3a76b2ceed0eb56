"""The training plan of the shipped models: base configs x variants x seeds.

One base YAML per system (``configs/pretrained/base/<system>.yaml``) fixes the
data, backbone size and budget; :func:`expand` writes one full config per
(variant, seed) to ``configs/pretrained/<system>/<variant>-seed<k>.yaml`` that
differs from the base only in ``variant``, ``seed`` and ``out_dir``. So every
variant of a system gets the same data, backbone, budget and seeds by
construction.
"""

from __future__ import annotations

import dataclasses
import json
import lzma
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import yaml

from pansim.backbones import VARIANTS
from pansim.files import atomic_path, write_text_atomic
from pansim.training.config import check_keys

SEEDS = (0, 1, 2)
#: a partial run's checkpoint as committed (``checkpoint.pt`` itself is git-ignored)
SNAPSHOT = "checkpoint.pt.xz"
#: keys a base file must not set (they are what the plan varies)
VARIED = ("variant", "seed", "out_dir")


@dataclasses.dataclass(frozen=True)
class Job:
    """One training run of the plan."""

    system: str
    variant: str
    seed: int
    config: Path
    out_dir: Path


def read_base(path: Path) -> dict:
    """A base config, checked: known keys only, none of :data:`VARIED`."""
    data = yaml.safe_load(path.read_text()) or {}
    check_keys(list(data), where=str(path))
    clash = [k for k in VARIED if k in data]
    if clash:
        raise ValueError(f"{path}: base configs must not set {clash}; the plan sets them")
    return data


def expand(
    base_dir: str | Path,
    config_dir: str | Path,
    runs_dir: str | Path = "results/training",
    variants: Sequence[str] = VARIANTS,
    seeds: Sequence[int] = SEEDS,
) -> list[Job]:
    """Write one config per system x variant x seed; returns the jobs."""
    jobs = []
    for base_path in sorted(Path(base_dir).glob("*.yaml")):
        system = base_path.stem
        base = read_base(base_path)
        for variant in variants:
            for seed in seeds:
                jobs.append(_write_job(system, base, variant, seed, config_dir, runs_dir))
    return jobs


def _write_job(system, base, variant, seed, config_dir, runs_dir) -> Job:
    name = f"{variant}-seed{seed}"
    out_dir = Path(runs_dir) / system / name
    config = Path(config_dir) / system / f"{name}.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    full = {**base, "variant": variant, "seed": seed, "out_dir": str(out_dir)}
    header = f"# generated from base/{system}.yaml by scripts/train_pretrained.py; do not edit\n"
    write_text_atomic(config, header + yaml.safe_dump(full, sort_keys=False))
    return Job(system, variant, seed, config, out_dir)


def jobs_in(
    config_dir: str | Path, systems: Sequence[str] | None = None, root: str | Path | None = None
) -> list[Job]:
    """The expanded configs present under ``config_dir`` (optionally some systems only).

    A relative ``out_dir`` is where ``pansim train`` writes when run from ``root``; with
    ``root`` given it is made absolute, so :func:`status` does not depend on the working
    directory.
    """
    jobs = []
    for path in sorted(Path(config_dir).glob("*/*-seed*.yaml")):
        system = path.parent.name
        if systems and system not in systems:
            continue
        data = yaml.safe_load(path.read_text())
        out_dir = Path(data["out_dir"])
        if root is not None and not out_dir.is_absolute():
            out_dir = Path(root) / out_dir
        jobs.append(Job(system, data["variant"], int(data["seed"]), path, out_dir))
    return jobs


def status(job: Job) -> str:
    """``done`` (a full run's summary), ``partial`` (a checkpoint or its snapshot), ``todo``."""
    summary = job.out_dir / "summary.json"
    if summary.exists():
        reason = json.loads(summary.read_text()).get("stop_reason", "")
        if not reason.startswith("max_steps"):
            return "done"
    if (job.out_dir / "checkpoint.pt").exists() or (job.out_dir / SNAPSHOT).exists():
        return "partial"
    return "todo"


def restore_checkpoint(job: Job) -> bool:
    """Unpack ``job``'s committed :data:`SNAPSHOT` when ``checkpoint.pt`` is missing.

    A fresh clone holds a partial run's metrics and best model and only the compressed
    checkpoint; unpacked (atomically), the run resumes where the snapshot was taken.
    Returns whether it unpacked.
    """
    target, packed = job.out_dir / "checkpoint.pt", job.out_dir / SNAPSHOT
    if target.exists() or not packed.exists():
        return False
    with atomic_path(target) as partial, lzma.open(packed) as src, open(partial, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())
    stamp = packed.stat()
    os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # not newer than its snapshot
    return True


def snapshot_checkpoint(job: Job) -> bool:
    """Write ``job``'s :data:`SNAPSHOT` (atomically) when ``checkpoint.pt`` is newer.

    The copy to commit for a run that has not finished. Returns whether it wrote.
    """
    source, packed = job.out_dir / "checkpoint.pt", job.out_dir / SNAPSHOT
    if not source.exists() or status(job) == "done":
        return False
    if packed.exists() and packed.stat().st_mtime >= source.stat().st_mtime:
        return False
    with atomic_path(packed) as partial:
        with open(source, "rb") as src, lzma.open(partial, "wb", preset=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
    return True


def select(
    jobs: Sequence[Job],
    systems: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
) -> list[Job]:
    """The jobs of the given systems, variants and seeds (``None`` or empty: all)."""
    return [
        j
        for j in jobs
        if (not systems or j.system in systems)
        and (not variants or j.variant in variants)
        and (not seeds or j.seed in seeds)
    ]


def read_queue(path: str | Path, root: str | Path) -> list[list[Job]]:
    """The stages of a queue file, each a list of jobs (in the file's order).

    A queue file is a YAML list of stages, each a mapping with ``configs`` (a folder of
    expanded configs, relative to ``root``) and optionally ``systems``, ``variants``,
    ``seeds`` to select from it.
    """
    stages = yaml.safe_load(Path(path).read_text())
    if not isinstance(stages, list) or not stages:
        raise ValueError(f"{path}: a queue is a non-empty YAML list of stages")
    known = {"configs", "systems", "variants", "seeds"}
    out = []
    for i, stage in enumerate(stages):
        where = f"{path}: stage {i + 1}"
        if not isinstance(stage, dict) or "configs" not in stage:
            raise ValueError(f"{where}: a mapping with a 'configs' folder is required")
        unknown = sorted(set(stage) - known)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
        folder = Path(root) / stage["configs"]
        if not folder.is_dir():
            raise ValueError(f"{where}: no folder {folder}")
        jobs = select(jobs_in(folder, root=root), stage.get("systems"), stage.get("variants"),
                      stage.get("seeds"))  # fmt: skip
        if not jobs:
            raise ValueError(f"{where}: selects no config under {folder}")
        out.append(jobs)
    return out


def command(job: Job, nproc: int = 1) -> list[str]:
    """The command line that trains ``job`` (``torchrun`` when ``nproc`` > 1)."""
    resume = ["--resume"] if status(job) == "partial" else []
    config = relative_path(job.config)
    if nproc > 1:
        return ["torchrun", f"--nproc_per_node={nproc}", "-m", "pansim", "train", config, *resume]
    return ["pansim", "train", config, *resume]


def relative_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
