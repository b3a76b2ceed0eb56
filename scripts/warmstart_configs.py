#!/usr/bin/env python
"""Write the warm-start test of one system (issue 23, docs/science.md section 3).

Every run starts from the converged baseline's best weights
(``results/converged/<system>/baseline-seed<k>/best_model.safetensors``): the baseline
itself continued (the control: what more training alone does) and, for each PAN/PGS
variant, a zero-started graft of it (identical predictions at step 0), made with
``pansim graft ... --option c_max=<c_max>`` for the variants with PAN, where ``c_max``
is the one the from-scratch pan+pgs run got from the same training data (a percentile
of the training coordinations: the same for every PAN variant). All runs use the
converged recipe (``configs/converged/<system>/baseline-seed<k>.yaml``, minus the
architecture keys, which come from the start file) at the learning rate the baseline
had reached when it stopped (the last row of its ``metrics.json``); nothing else
differs between them (``tests/training/test_warmstart_configs.py``).

    python scripts/warmstart_configs.py --system lif            # configs + grafts
    python scripts/train_pretrained.py run --configs configs/warmstart \
        --runs results/warmstart --systems lif --jobs 2 --threads 1
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


def c_max_of(model: Path) -> float:
    """The PAN ``c_max`` stored in a model file's JSON config (no code executed)."""
    from safetensors import safe_open

    with safe_open(str(model), "pt") as handle:
        config = json.loads(handle.metadata()["config"])
    if "c_max" not in config:
        raise SystemExit(f"{model}: its config has no c_max (not a PAN/PGS model?)")
    return float(config["c_max"])


def final_lr(run: Path) -> float:
    """The learning rate of the last epoch a finished run trained."""
    if not (run / "summary.json").exists():
        raise SystemExit(f"{run} has not finished: the warm start needs its final weights")
    return float(json.loads((run / "metrics.json").read_text())[-1]["lr"])


def graft_options(variant: str, c_max: float) -> list[str]:
    """``pansim graft`` options of one variant: PAN's c_max (PGS has no such constant)."""
    return ["--option", f"c_max={c_max!r}"] if "pan" in variant.split("+") else []


def header(system: str, seed: int, lr: float, c_max: float) -> str:
    """The comment block on top of every config: provenance and the graft commands."""
    grafts = "\n".join(
        f"#   pansim graft results/converged/{system}/baseline-seed{seed}/best_model.safetensors"
        f" --variant {v} --out results/warmstart/{system}/init-{v}.safetensors --seed {seed}"
        + "".join(f" {o}" for o in graft_options(v, c_max))
        for v in VARIANTS
    )
    return (
        f"# Warm-start test of {system} (issue 23, docs/science.md section 3), written by\n"
        f"# python scripts/warmstart_configs.py --system {system} --seed {seed}.\n"
        f"# Every run starts from results/converged/{system}/baseline-seed{seed}: the baseline\n"
        "# itself (the control) or a zero-started graft of it (identical predictions), made by\n"
        f"{grafts}\n"
        "# (c_max as the from-scratch pan+pgs run got it from the same data). The\n"
        f"# converged recipe at the learning rate the baseline had reached at its stop ({lr:g}).\n"
        "# Run: python scripts/train_pretrained.py run --configs configs/warmstart "
        f"--runs results/warmstart --systems {system} --jobs 2 --threads 1\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Write the configs (and the grafted start files); 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--configs", type=Path, default=ROOT / "configs" / "warmstart")
    parser.add_argument("--no-graft", action="store_true", help="configs only")
    args = parser.parse_args(argv)
    system, seed = args.system, args.seed
    start = Path("results/converged") / system / f"baseline-seed{seed}"
    lr = final_lr(ROOT / start)
    scratch = ROOT / "results/converged" / system / f"pan+pgs-seed{seed}/best_model.safetensors"
    if not scratch.exists():
        raise SystemExit(f"{scratch}: no from-scratch pan+pgs run to take c_max from")
    c_max = c_max_of(scratch)
    converged = yaml.safe_load(
        (ROOT / "configs/converged" / system / f"baseline-seed{seed}.yaml").read_text()
    )
    base = {k: v for k, v in converged.items() if k not in (*FROM_START_FILE, "out_dir")}
    base["lr"] = lr
    out = args.configs / system
    out.mkdir(parents=True, exist_ok=True)
    text = header(system, seed, lr, c_max)
    for variant in ("baseline", *VARIANTS):
        config = dict(base, variant=variant, seed=seed)
        config["init_from"] = (
            f"{start}/best_model.safetensors"
            if variant == "baseline"
            else f"results/warmstart/{system}/init-{variant}.safetensors"
        )
        config["out_dir"] = f"results/warmstart/{system}/{variant}-seed{seed}"
        path = out / f"{variant}-seed{seed}.yaml"
        path.write_text(text + yaml.safe_dump(config, sort_keys=False))
        print("wrote", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    if args.no_graft:
        return 0
    for variant in VARIANTS:
        init = ROOT / "results/warmstart" / system / f"init-{variant}.safetensors"
        if init.exists():
            print("exists", init.relative_to(ROOT))
            continue
        source = str(ROOT / start / "best_model.safetensors")
        cmd = [sys.executable, "-m", "pansim", "graft", source, "--variant", variant,
               "--out", str(init), "--seed", str(seed), *graft_options(variant, c_max)]  # fmt: skip
        subprocess.run(cmd, check=True, cwd=ROOT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
