#!/usr/bin/env python
"""Train every shipped model (and the ablation runs): system x variant x seed.

The plan lives in ``configs/pretrained/``: one base file per system
(``base/<system>.yaml``: data, backbone size, budget) and, generated from it,
one config per variant and seed (``<system>/<variant>-seed<k>.yaml``).

Usage (from the repository root)::

    python scripts/train_pretrained.py write-configs          # regenerate the expanded configs
    python scripts/train_pretrained.py list                   # jobs, status, exact commands
    python scripts/train_pretrained.py run --systems si        # train (resumes partial runs)
    python scripts/train_pretrained.py run --nproc 2           # each job on 2 processes (torchrun)
    python scripts/train_pretrained.py run --jobs 2 --threads 1  # two 1-thread jobs side by side
    python scripts/train_pretrained.py run --queue configs/queue.yaml --jobs 2 --threads 1
    python scripts/train_pretrained.py snapshot --queue configs/queue.yaml  # xz copies to commit
    python scripts/train_pretrained.py cards                  # model cards of finished runs
    python scripts/train_pretrained.py ship --dest DIR        # shipped models + cards to DIR
    python scripts/train_pretrained.py ship --configs configs/converged --dest pansim/pretrained \
        --decision results/converged/ship_si.json            # what the shipping rule chose
    python scripts/train_pretrained.py ship --configs configs/converged --dest pansim/pretrained \
        --decision results/converged/ship_si_recipes.json --recipe warmstart=configs/warmstart
    python scripts/train_pretrained.py demo --out runs/demo    # synthetic EMT data, end to end

Every job is exactly ``pansim train <config>`` (``--resume`` when a checkpoint
exists), so each shipped model can also be rebuilt with that one call.

Long campaigns outlive a session: ``--queue FILE`` takes the stages of a YAML queue
(``configs/queue.yaml``: the remaining plan in priority order) as one list, so the
``--jobs`` slots stay busy across stage boundaries. A partial run's ``checkpoint.pt`` is
git-ignored; ``snapshot`` writes the ``checkpoint.pt.xz`` to commit, and ``run`` unpacks
it again in a fresh clone before resuming (finished runs are skipped, nothing is redone).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

from pansim.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # lab/ (research bookkeeping, not installed)
CONFIGS = ROOT / "configs" / "pretrained"


def _plan():
    from lab import plan

    return plan


def write_configs(args) -> int:
    """Expand ``base/*.yaml`` into one config per variant and seed."""
    jobs = _plan().expand(args.base, args.configs, args.runs, args.variants, args.seeds)
    print(f"wrote {len(jobs)} configs under {args.configs}")
    return 0


def _selected(args):
    return [job for stage in _stages(args) for job in stage]


def _stages(args):
    """The selected jobs in stages: the queue file's, or one stage of ``--configs``."""
    plan = _plan()
    if getattr(args, "queue", None):
        try:
            stages = plan.read_queue(args.queue, root=ROOT)
        except (OSError, ValueError) as err:
            raise SystemExit(f"--queue: {err}") from None
    else:
        stages = [plan.jobs_in(args.configs, args.systems, root=ROOT)]
    seen: set[Path] = set()
    out = []
    for stage in stages:
        chosen = []
        for job in plan.select(stage, args.systems, args.variants, args.seeds):
            if job.config.resolve() not in seen:
                seen.add(job.config.resolve())
                chosen.append(job)
        out.append(chosen)
    return out


def list_jobs(args) -> int:
    """Print each job's status and the command that (re)trains it."""
    plan = _plan()
    for job in _selected(args):
        print(f"{plan.status(job):8s} {' '.join(plan.command(job, args.nproc))}")
    return 0


def _executable(cmd: list[str]) -> list[str]:
    if cmd[0] == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", *cmd[1:]]
    return [sys.executable, "-m", "pansim", *cmd[1:]]


def unfinished_data(job) -> str | None:
    """Why ``job`` should wait: its dataset (``data/<system>/manifest.json``) has pending labels.

    A run trained on a partly labelled dataset would count as done and never be redone,
    so ``run`` skips such systems unless ``--allow-incomplete-data``.
    """
    from pansim.data.manifest import unfinished_labels

    config = yaml.safe_load(Path(job.config).read_text())
    train = Path(config["train_file"])
    folder = (train if train.is_absolute() else ROOT / train).parent
    return unfinished_labels(
        folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder, job.system
    )


def run_jobs(args) -> int:
    """Train every selected job that is not done; ``--jobs`` of them side by side.

    Order: by seed, then system, then baseline, pan+pgs, pan, pgs.

    ``--threads`` sets OMP_NUM_THREADS for each job's process. On a 2-core machine two
    1-thread jobs side by side train faster in total than one 2-thread job after the
    other (a small-batch step gains little from a second thread):
    ``run --jobs 2 --threads 1``.
    """
    from concurrent.futures import ThreadPoolExecutor

    plan = _plan()
    # within a stage seed-major, shipped pair first: a run cut short still leaves whole
    # seeds, and seed 0's baseline and pan+pgs (the shipped models) come first
    rank = {"baseline": 0, "pan+pgs": 1, "pan": 2, "pgs": 3}
    todo = []
    for stage in _stages(args):
        stage = [job for job in stage if plan.status(job) != "done"]
        todo += sorted(
            stage, key=lambda job: (job.seed, job.system, rank.get(job.variant, 4), job.variant)
        )
    if not getattr(args, "allow_incomplete_data", False):
        waiting = {job.system: unfinished_data(job) for job in todo}
        for system, why in sorted(waiting.items()):
            if why:
                print(f"skipping {system}: {why}", file=sys.stderr)
        todo = [job for job in todo if not waiting[job.system]]
    jobs, threads = getattr(args, "jobs", 1), getattr(args, "threads", None)
    if jobs > 1 and args.in_process:
        raise SystemExit("--in-process runs one job at a time; drop it or use --jobs 1")
    env = None
    if threads:
        import os

        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}

    def one(job) -> int:
        if plan.restore_checkpoint(job):
            print(f"unpacked {plan.relative_path(job.out_dir / plan.SNAPSHOT)}", flush=True)
        cmd = plan.command(job, args.nproc)
        print("+", " ".join(cmd), flush=True)
        if args.in_process and args.nproc == 1:
            from pansim.cli import main

            return main(cmd[1:])
        return subprocess.call(_executable(cmd), cwd=ROOT, env=env)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        codes = list(pool.map(one, todo))
    return 1 if any(code != 0 for code in codes) else 0


def snapshot(args) -> int:
    """Write the ``checkpoint.pt.xz`` of every partial run (the copy to commit)."""
    plan = _plan()
    for job in _selected(args):
        if plan.snapshot_checkpoint(job):
            print("wrote", plan.relative_path(job.out_dir / plan.SNAPSHOT))
    return 0


def write_cards(args) -> int:
    """Write model_card.json/.md next to every finished run."""
    from lab import cards

    plan = _plan()
    for job in _selected(args):
        if plan.status(job) == "done":
            print("wrote", *cards.write_card(job))
    return 0


def ship(args) -> int:
    """Copy the shipped models and their cards.

    Without ``--decision``: seed 0 of pan+pgs (the system name) and of the baseline.
    With ``--decision RUNS/ship_<system>.json`` (``scripts/ship_decision.py``): what the
    shipping rule chose, plus every finished variant under ``<system>-<variant>``.
    """
    import json

    from lab import cards

    if args.dest is None:
        print("ship: --dest DIR is required", file=sys.stderr)
        return 2
    if args.decision is not None:
        decision = json.loads(args.decision.read_text())
        from lab.ship import ShipRuleError, parse_recipe

        recipes = {}
        for item in args.recipe or []:
            try:
                tag, folder = parse_recipe(item)
            except ShipRuleError as err:
                print(f"ship: {err}", file=sys.stderr)
                return 2
            recipes[tag] = _plan().jobs_in(folder, args.systems, root=ROOT)
        try:
            written = cards.ship_decided(
                decision, _selected(args), args.dest, recipes, args.keep_previous_as
            )
        except ShipRuleError as err:
            print(f"ship: {err}", file=sys.stderr)
            return 2
    else:
        written = cards.ship(_selected(args), args.dest)
    for path in written:
        print("wrote", path)
    return 0


def demo(args) -> int:
    """Synthetic EMT (Cu/Ag) data, tiny models, all variants, then the ablation table."""
    from pansim.files import write_text_atomic
    from pansim.training.synthetic import write_emt_splits

    out = Path(args.out).resolve()  # runs train in-process here, status is checked from ROOT
    files = write_emt_splits(out / "data", sizes=tuple(args.sizes), seed=0)
    base = {
        "train_file": str(files["train"]),
        "valid_file": str(files["val"]),
        "test_file": str(files["test"]),
        "r_max": 4.0,
        "hyperparameters": yaml.safe_load(args.hyperparameters),
        "batch_size": 4,
        "max_epochs": args.epochs,
        "early_stopping_patience": None,
        "progress": False,
    }
    (out / "configs" / "base").mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "configs" / "base" / "emt.yaml", yaml.safe_dump(base))
    _plan().expand(
        out / "configs" / "base", out / "configs", out / "runs", args.variants, args.seeds
    )
    ns = argparse.Namespace(configs=out / "configs", systems=None, variants=None, seeds=None,
                            nproc=1, in_process=True)  # fmt: skip
    if run_jobs(ns) or write_cards(ns):
        return 1
    import runpy

    ablation = runpy.run_path(str(ROOT / "scripts" / "ablation_table.py"))
    # the demo's own runs only: no rows merged from the project's results/nequip table
    argv = ["--configs", str(out / "configs"), "--out", str(out / "ablation"), "--merge"]
    return ablation["main"](argv)


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the script."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    actions = {"write-configs": write_configs, "list": list_jobs, "run": run_jobs,
               "snapshot": snapshot, "cards": write_cards, "ship": ship}  # fmt: skip
    for name, func in actions.items():
        p = sub.add_parser(name)
        p.set_defaults(func=func)
        p.add_argument("--configs", type=Path, default=CONFIGS)
        p.add_argument(
            "--queue", type=Path, metavar="FILE",
            help="list/run/snapshot: the stages of a YAML queue instead of --configs",
        )  # fmt: skip
        p.add_argument("--systems", nargs="*")
        p.add_argument("--variants", nargs="*")
        p.add_argument("--seeds", nargs="*", type=int)
        p.add_argument("--nproc", type=int, default=1, help="processes per job (torchrun)")
        p.add_argument("--in-process", action="store_true", help="no subprocess (nproc 1)")
        p.add_argument("--jobs", type=int, default=1, help="run: jobs side by side")
        p.add_argument("--threads", type=int, help="run: OMP_NUM_THREADS of each job")
        p.add_argument(
            "--allow-incomplete-data", action="store_true",
            help="run: also train systems whose dataset still has pending labels",
        )  # fmt: skip
        p.add_argument("--base", type=Path, default=CONFIGS / "base")
        p.add_argument("--runs", default="results/training")
        p.add_argument("--dest", type=Path, help="ship: destination folder")
        p.add_argument(
            "--decision", type=Path,
            help="ship: a shipping decision (scripts/ship_decision.py) to follow",
        )  # fmt: skip
        p.add_argument(
            "--recipe", action="append", metavar="TAG=CONFIGS",
            help="ship: configs of a second recipe the decision names as <variant>@TAG",
        )  # fmt: skip
        p.add_argument(
            "--keep-previous-as", metavar="TAG",
            help="ship: when <system>-baseline moves to another run, keep the previous one "
            "as <system>-baseline-TAG for the explicit names trained beside it",
        )  # fmt: skip
    p = sub.add_parser("demo")
    p.set_defaults(func=demo)
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--sizes", nargs=3, type=int, default=[24, 8, 8])
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--variants", nargs="*", default=list(VARIANTS))
    p.add_argument(
        "--hyperparameters",
        default="{num_channels: 8, max_L: 1, correlation: 2, num_interactions: 2}",
        help="YAML mapping of backbone hyperparameters",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    if args.action == "write-configs":
        from pansim.backbones import VARIANTS

        args.variants = args.variants or list(VARIANTS)
        args.seeds = args.seeds or list(_plan().SEEDS)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
