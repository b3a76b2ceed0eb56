r"""Fair tuning (issue 23, point 2): the same number of trials per variant, chosen on validation.

Every variant of a system gets :data:`TRIALS_PER_VARIANT` trials of the converged recipe
(``configs/converged/base/<system>.yaml``; seed 0), differing only in the settings below,
and the variant's setting is the trial with the lowest best validation loss (the
trainer's selection metric). The test split is not evaluated by any trial
(``test_file: null``); ``report --final`` evaluates it once per variant, on the chosen
trial's best weights, after the choice is made.

Trials (:func:`trials`):

- every variant: learning rate 2.5e-3, 5e-3 (the converged recipe) and 1e-2;
- the baseline's fourth trial: learning rate 2e-2; the PAN/PGS variants' fourth trial:
  learning rate 5e-3 with ``module_lr_scale`` 0.2 (the added parameters at a fifth of
  the backbone's rate);
- variants with PAN carry ``pan_curvature_weight: 1.0`` in every trial: unpenalised PAN
  fails the E(V) check on Si (docs/science.md section 6) and the shipping rule needs it.

Runs that a trial duplicates exactly are not trained twice: the baseline and pgs at
5e-3 are the converged runs, and Si's pan at 5e-3 with the penalty is the earlier
penalty trial (``configs/trials/si/pan-curv1-seed0.yaml``, the same config but its
``out_dir``; :data:`REUSED`).

    python scripts/tuning.py write --systems si                 # configs/tuning/si/*.yaml
    python scripts/train_pretrained.py run --configs configs/tuning --systems si \
        --jobs 2 --threads 1                                     # train (resumes)
    python scripts/tuning.py report                             # choice per variant
    python scripts/tuning.py report --final                     # + test errors, once
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # lab/ (research bookkeeping, not installed)

from lab.runs import read_run  # noqa: E402

VARIANTS = ("baseline", "pan", "pgs", "pan+pgs")
TRIALS_PER_VARIANT = 4
RECIPE_LR = 5e-3


def trials(variant: str) -> list[dict]:
    """The settings each trial of ``variant`` changes (see the module docstring)."""
    lrs = [{"lr": 2.5e-3}, {"lr": RECIPE_LR}, {"lr": 1e-2}]
    extra = {"lr": 2e-2} if variant == "baseline" else {"lr": RECIPE_LR, "module_lr_scale": 0.2}
    out = [*lrs, extra]
    if "pan" in variant.split("+"):
        out = [{**t, "pan_curvature_weight": 1.0} for t in out]
    return out


def trial_name(variant: str, settings: dict) -> str:
    """``pan+pgs-lr0.01-mlr0.2-curv1``: the variant and what the trial sets."""
    tag = f"{variant}-lr{settings['lr']:g}"
    if "module_lr_scale" in settings:
        tag += f"-mlr{settings['module_lr_scale']:g}"
    if settings.get("pan_curvature_weight"):
        tag += f"-curv{settings['pan_curvature_weight']:g}"
    return tag


#: trials that an earlier run already is, config for config: (system, trial) -> run folder
REUSED = {("si", "pan-lr0.005-curv1"): "results/trials/si/pan-curv1-seed0"}


def run_folder(system: str, variant: str, settings: dict) -> str:
    """Where a trial's run lives: a reused run (converged recipe, :data:`REUSED`) or its own."""
    name = trial_name(variant, settings)
    if settings == {"lr": RECIPE_LR}:
        return f"results/converged/{system}/{variant}-seed0"
    return REUSED.get((system, name), f"results/tuning/{system}/{name}-seed0")


def write_configs(system: str, root: Path = ROOT) -> list[Path]:
    """One config per trial under ``configs/tuning/<system>/`` (seed 0, no test split)."""
    from pansim.files import write_text_atomic

    base_path = root / "configs" / "converged" / "base" / f"{system}.yaml"
    base = yaml.safe_load(base_path.read_text())
    written = []
    for variant in VARIANTS:
        for settings in trials(variant):
            name = trial_name(variant, settings)
            config = {**base, **settings, "test_file": None, "variant": variant, "seed": 0}
            config["out_dir"] = run_folder(system, variant, settings)
            path = root / "configs" / "tuning" / system / f"{name}-seed0.yaml"
            header = (
                f"# tuning trial of {variant} on {system} (scripts/tuning.py write; do not "
                f"edit): the converged recipe with {json.dumps(settings)}, no test split\n"
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, header + yaml.safe_dump(config, sort_keys=False))
            written.append(path)
    return written


def collect_trials(system: str, root: Path = ROOT) -> dict[str, list[dict]]:
    """Per variant, every trial with its run (``None`` while not started)."""
    table: dict[str, list[dict]] = {}
    for variant in VARIANTS:
        for settings in trials(variant):
            path = (
                root / "configs" / "tuning" / system / f"{trial_name(variant, settings)}-seed0.yaml"
            )
            if not path.exists():
                continue
            config = yaml.safe_load(path.read_text())
            run = read_run(root / config["out_dir"])
            table.setdefault(variant, []).append(
                {"name": trial_name(variant, settings), "settings": settings, "run": run}
            )
    return table


def choose(table: dict[str, list[dict]]) -> dict[str, dict]:
    """Per variant, the finished trial with the lowest best validation loss.

    A variant whose trials are not all finished has no choice yet (``None``): choosing
    among some trials only would give it fewer trials than the others.
    """
    chosen = {}
    for variant, rows in table.items():
        done = [r for r in rows if r["run"] and r["run"]["status"] == "finished"]
        if len(done) < TRIALS_PER_VARIANT:
            chosen[variant] = None
            continue
        chosen[variant] = min(done, key=lambda r: r["run"]["best_valid_loss"])
    return chosen


def final_test(system: str, row: dict, root: Path = ROOT) -> dict:
    """The test errors of a chosen trial's best weights (the one touch of the test split)."""
    from lab.errors import QUANTITIES, maes

    best = root / row["run"]["path"] / "best_model.safetensors"
    errors = maes(best, root / "data" / system / "test.extxyz")
    return {k: errors[k] for k in QUANTITIES}


def markdown(system: str, table: dict, chosen: dict, tests: dict) -> str:
    """Every trial (validation only), the choice, and the final test errors if measured."""

    def fmt(value):
        return "-" if value is None else f"{value:.4g}"

    lines = [
        f"# Tuning, {system}: {TRIALS_PER_VARIANT} trials per variant, chosen on validation",
        "",
        "Written by `python scripts/tuning.py report`. Seed 0, converged recipe; valid loss "
        "and MAEs at each run's best epoch (E meV/atom, F meV/A, S GPa).",
        "",
        "| variant | trial | status | epochs | valid loss | valid E | valid F | valid S | chosen |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, rows in table.items():
        for row in rows:
            run = row["run"] or {}
            valid = run.get("best_valid", {})
            pick = chosen.get(variant)
            mark = "**yes**" if pick is not None and pick["name"] == row["name"] else ""
            lines.append(
                f"| {variant} | `{row['name']}` | {run.get('status', 'not started')} "
                f"| {run.get('epochs', '-')} | {fmt(run.get('best_valid_loss'))} "
                f"| {fmt(valid.get('valid_energy_mae'))} | {fmt(valid.get('valid_forces_mae'))} "
                f"| {fmt(valid.get('valid_stress_mae'))} | {mark} |"
            )
    if tests:
        lines += ["", "## Test split, once, on each variant's chosen trial", ""]
        lines += ["| variant | trial | test E | test F | test S |", "|---|---|---|---|---|"]
        for variant, test in tests.items():
            lines.append(
                f"| {variant} | `{chosen[variant]['name']}` | {fmt(test['energy_per_atom'])} "
                f"| {fmt(test['forces'])} | {fmt(test['stress'])} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``write`` the trial configs or ``report`` the choice."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("write", "report"))
    parser.add_argument("--systems", nargs="+", default=["si"])
    parser.add_argument("--final", action="store_true", help="report: test errors, once")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "tuning")
    args = parser.parse_args(argv)
    from pansim.files import write_json_atomic, write_text_atomic

    for system in args.systems:
        if args.action == "write":
            print(f"wrote {len(write_configs(system))} configs under configs/tuning/{system}")
            continue
        table = collect_trials(system)
        chosen = choose(table)
        missing = [v for v, pick in chosen.items() if pick is None]
        if args.final and missing:
            parser.error(f"{system}: not every trial of {missing} has finished; no test yet")
        tests = {v: final_test(system, pick) for v, pick in chosen.items()} if args.final else {}
        text = markdown(system, table, chosen, tests)
        write_text_atomic(args.out / f"{system}.md", text)
        slim = {v: [{**r, "run": {k: x for k, x in (r["run"] or {}).items() if k != "history"}}
                    for r in rows] for v, rows in table.items()}  # fmt: skip
        write_json_atomic(args.out / f"{system}.json", {"trials": slim, "tests": tests})
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
