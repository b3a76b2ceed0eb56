r"""Apply the shipping rule (issue 23, :mod:`lab.ship`) to one system's converged runs.

Reads every run of ``RUNS/<system>/`` (:func:`lab.runs.collect`), runs the E(V) check
(:func:`lab.eos.check`) on each finished run's best model for a crystal, and writes
``RUNS/ship_<system>.json`` / ``.md``: per variant the mean validation loss and errors
over the seeds every variant has finished, the E(V) verdict, the test errors (listed,
not used), and which variant the plain name serves and why. ``train_pretrained.py ship
--decision RUNS/ship_<system>.json`` then copies the models.

    python scripts/ship_decision.py --system si --runs results/converged
    python scripts/ship_decision.py --system si --runs results/converged \
        --recipe warmstart=results/warmstart --out results/converged/ship_si_recipes.json

``--recipe TAG=RUNS`` adds the runs of a second recipe as ``<variant>@TAG`` (rule 5 of
:mod:`lab.ship`: same clauses, same baseline twin, which may be that recipe's baseline
run if its validation loss is lower).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # lab/ (research bookkeeping, not installed)

from lab import ship  # noqa: E402
from lab.plan import relative_path  # noqa: E402
from lab.runs import collect  # noqa: E402

CRYSTALS = ("si", "lif", "ag")


def main(argv: list[str] | None = None) -> int:
    """Decide, write the decision (JSON + Markdown) and print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True)
    parser.add_argument("--runs", type=Path, default=ROOT / "results" / "converged")
    parser.add_argument("--out", type=Path, help="default: RUNS/ship_<system>.json")
    parser.add_argument(
        "--recipe", action="append", default=[], metavar="TAG=RUNS",
        help="runs of a second recipe, as <variant>@TAG (repeatable)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    runs = collect(args.runs).get(args.system)
    if not runs:
        parser.error(f"no runs of {args.system!r} under {args.runs}")
    recipes = {}
    for item in args.recipe:
        try:
            tag, folder = ship.parse_recipe(item)
        except ship.ShipRuleError as err:
            parser.error(str(err))
        extra = collect(Path(folder)).get(args.system)
        if not extra:
            parser.error(f"--recipe {item!r}: no runs of {args.system!r} under {folder}")
        runs = runs + ship.tag_recipe(extra, tag)
        recipes[tag] = relative_path(Path(folder))
    seeds = ship.common_seeds(runs)
    eos = None
    if args.system in CRYSTALS:
        from lab.eos import check

        eos = {}
        for run in runs:
            if run["status"] == "finished" and run["seed"] in seeds:
                model = ROOT / run["path"] / "best_model.safetensors"
                print(f"E(V) check: {run['path']}", flush=True)
                eos[run["path"]] = {
                    **check(args.system, str(model)),
                    "model": relative_path(model),
                }
    decision = ship.choose(args.system, runs, eos)
    decision["runs_dir"] = relative_path(args.runs)
    decision["recipes"] = recipes
    decision["eos_checks"] = eos
    decision["command"] = "python scripts/ship_decision.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    out = args.out or args.runs / f"ship_{args.system}.json"
    from pansim.files import write_json_atomic, write_text_atomic

    table = ship.markdown(decision)
    write_json_atomic(out, decision)
    write_text_atomic(out.with_suffix(".md"), table)
    print(table)
    print("wrote", out, out.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
