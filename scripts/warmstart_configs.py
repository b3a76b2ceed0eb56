#!/usr/bin/env python
"""Write the warm-start test of one system (issue 23, docs/science.md section 3).

Every run starts from a finished baseline run's best weights (by default the converged
recipe's, ``results/converged/<system>/baseline-seed<k>``, i.e. the ``out_dir`` of
``configs/converged/<system>/baseline-seed<k>.yaml``): the baseline itself continued
(the control: what more training alone does) and, for each PAN/PGS variant, a
zero-started graft of it (identical predictions at step 0), made with
``pansim graft ... --option c_max=<c_max>`` for the variants with PAN, where ``c_max``
is what a from-scratch run of the variant gets from the same training data
(:func:`pansim.training.trainer.model_kwargs`: a percentile of the training
coordinations). All runs use the stage-1 recipe (the baseline's config, minus the
architecture keys, which come from the start file) at the learning rate the baseline had
reached when it stopped (the last row of its ``metrics.json``); nothing else differs
between them (``tests/training/test_warmstart_configs.py``). ``--warmup-epochs N`` adds a
linear learning-rate warm-up over the first N epochs (``lr_warmup_steps``): without it the
fresh Adam state's first step moves every parameter by about the learning rate, which
throws the converged start far off (LiF: training loss x30 for the control, x700 for the
PGS grafts on step 1; docs/science.md section 3). The committed LiF and Si sets predate
the option and have none.

    python scripts/warmstart_configs.py --system lif            # configs + grafts
    python scripts/train_pretrained.py run --configs configs/warmstart \
        --runs results/warmstart --systems lif --jobs 2 --threads 1
    # the same on the grown (active-learning) data, from its converged baseline:
    python scripts/warmstart_configs.py --system si --from configs/grown \
        --configs configs/warmstart-grown --runs results/warmstart-grown
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("pan", "pgs", "pan+pgs")
#: keys of a converged config that the start file fixes (architecture, data statistics)
FROM_START_FILE = ("hyperparameters", "r_max", "atomic_energies", "c_max_percentile")


def c_max_for(config_path: Path) -> float:
    """The ``c_max`` a from-scratch PAN run of this config would get from its training data."""
    from pansim.training.config import TrainConfig
    from pansim.training.trainer import load_data, model_kwargs

    data = yaml.safe_load(config_path.read_text())
    data = {k: v for k, v in data.items() if k != "init_from"}
    for key in ("train_file", "valid_file", "test_file"):  # relative to the repository
        if data.get(key):
            data[key] = str(ROOT / data[key])
    config = TrainConfig(**{**data, "variant": "pan+pgs"})
    return float(model_kwargs(config, load_data(config))["c_max"])


def final_lr(run: Path) -> float:
    """The learning rate of the last epoch a finished run trained."""
    if not (run / "summary.json").exists():
        raise SystemExit(f"{run} has not finished: the warm start needs its final weights")
    return float(json.loads((run / "metrics.json").read_text())[-1]["lr"])


def graft_options(variant: str, c_max: float) -> list[str]:
    """``pansim graft`` options of one variant: PAN's c_max (PGS has no such constant)."""
    from pansim.modules import variant_flags

    return ["--option", f"c_max={c_max!r}"] if variant_flags(variant)[0] else []


def steps_per_epoch(config: dict) -> int:
    """Optimizer steps in one epoch of ``config`` (its training frames / batch size, up)."""
    from ase.io import iread

    frames = sum(1 for _ in iread(ROOT / config["train_file"], index=":"))
    return -(-frames // int(config["batch_size"]))


def header(args, start: str, lr: float, c_max: float) -> str:
    """The comment block on top of every config: provenance and the graft commands."""
    grafts = "\n".join(
        f"#   pansim graft {start}/best_model.safetensors --variant {v} "
        f"--out {args.runs}/{args.system}/init-{v}.safetensors --seed {args.seed}"
        + "".join(f" {o}" for o in graft_options(v, c_max))
        for v in VARIANTS
    )
    return (
        f"# Warm-start test of {args.system} (issue 23, docs/science.md section 3), written by\n"
        f"# python scripts/warmstart_configs.py {' '.join(args.argv)}.\n"
        f"# Every run starts from {start}: the baseline itself (the control)\n"
        "# or a zero-started graft of it (identical predictions), made by\n"
        f"{grafts}\n"
        "# (c_max as a from-scratch PAN run gets it from the same data). The stage-1\n"
        f"# recipe at the learning rate the baseline had reached at its stop ({lr:g}).\n"
        + (
            f"# Every learning rate ramps up linearly over the first {args.warmup_epochs:g}"
            " epoch(s)\n# (lr_warmup_steps: a fresh Adam state would otherwise move every"
            " parameter by about lr on step 1).\n"
            if args.warmup_epochs
            else ""
        )
        + f"# Run: python scripts/train_pretrained.py run --configs {args.configs} "
        f"--runs {args.runs} --systems {args.system} --jobs 2 --threads 1\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Write the configs (and the grafted start files); 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--from",
        dest="stage1",
        default="configs/converged",
        help="config set of the stage-1 runs (their baseline is the start)",
    )
    parser.add_argument("--configs", default="configs/warmstart", help="where to write")
    parser.add_argument("--runs", default="results/warmstart", help="the runs' output root")
    parser.add_argument("--no-graft", action="store_true", help="configs only")  # fmt: skip
    parser.add_argument(
        "--warmup-epochs",
        type=float,
        default=0.0,
        help="ramp every learning rate up over this many epochs (lr_warmup_steps); default 0",
    )
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    system, seed = args.system, args.seed
    stage1 = ROOT / args.stage1 / system / f"baseline-seed{seed}.yaml"
    converged = yaml.safe_load(stage1.read_text())
    start = converged["out_dir"]
    lr = final_lr(ROOT / start)
    c_max = c_max_for(stage1)
    base = {k: v for k, v in converged.items() if k not in (*FROM_START_FILE, "out_dir")}
    base["lr"] = lr
    if args.warmup_epochs:
        base["lr_warmup_steps"] = max(1, round(args.warmup_epochs * steps_per_epoch(base)))
    out = Path(args.configs)
    out = (out if out.is_absolute() else ROOT / out) / system
    out.mkdir(parents=True, exist_ok=True)
    text = header(args, start, lr, c_max)
    for variant in ("baseline", *VARIANTS):
        config = dict(base, variant=variant, seed=seed)
        config["init_from"] = (
            f"{start}/best_model.safetensors"
            if variant == "baseline"
            else f"{args.runs}/{system}/init-{variant}.safetensors"
        )
        config["out_dir"] = f"{args.runs}/{system}/{variant}-seed{seed}"
        path = out / f"{variant}-seed{seed}.yaml"
        path.write_text(text + yaml.safe_dump(config, sort_keys=False))
        print("wrote", path)
    if args.no_graft:
        return 0
    for variant in VARIANTS:
        init = ROOT / args.runs / system / f"init-{variant}.safetensors"
        if init.exists():
            print("exists", init)
            continue
        source = str(ROOT / start / "best_model.safetensors")
        cmd = [sys.executable, "-m", "pansim", "graft", source, "--variant", variant,
               "--out", str(init), "--seed", str(seed), *graft_options(variant, c_max)]  # fmt: skip
        subprocess.run(cmd, check=True, cwd=ROOT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
