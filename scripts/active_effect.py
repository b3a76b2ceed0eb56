r"""Before / after the active-learning labels (issue 24): same recipe, original vs grown data.

For one crystal, compares a model trained on the original splits (``--before``) with the
same variant and seed trained on ``data/<system>/grown`` (``--after``), on

- the original test split (``data/<system>/test.extxyz``, byte-identical in grown/),
- the "active" test split (``data/<system>/grown/test_active.extxyz``: labelled
  structures of the last exploration round, never trained on),
- the short-range rows of ``pansim validate``: E(0.80 V0) - E0 (the EOS compression
  point) and the contact scan (repulsion energy at the shortest distance, its RMSE
  against DFT, the softening ratio), both against the committed DFT reference.

Writes ``OUT.md`` and ``OUT.json``; the validate run folder goes to ``OUT-validate/``.

    python scripts/active_effect.py --system si \
        --before results/converged/si/baseline-seed0/best_model.safetensors \
        --after results/grown/si/baseline-seed0/best_model.safetensors \
        --label "baseline, seed 0, converged recipe" --out results/active/si/effect
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # lab/ (research bookkeeping, not installed)
#: the validate rows that measure the short-range states the labels target
SHORT_RANGE_ROWS = (
    "E(0.80 V0) - E0",
    "repulsion E at shortest r",
    "repulsion RMSE vs DFT",
    "softening ratio (1 = DFT)",
)
QUANTITIES = (("energy_per_atom", "meV/atom"), ("forces", "meV/A"), ("stress", "GPa"))


def split_errors(model: str, path: Path) -> dict:
    """MAE per quantity of ``model`` on a labelled file (``pansim eval``'s metrics)."""
    from lab.errors import maes

    return maes(model, path)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _change(before, after) -> str:
    if before in (None, 0) or after is None:
        return "-"
    return f"{100 * (after / before - 1):+.1f} %"


def markdown(data: dict) -> str:
    """The before/after table."""
    lines = [
        f"# Effect of the active-learning labels, {data['system']}: {data['label']}",
        "",
        f"Written by `{data['command']}`.",
        f"Before: `{data['before']}` (original splits); after: `{data['after']}` "
        f"(`data/{data['system']}/grown`). Test splits were never trained on; MAEs.",
        "",
        "| quantity | unit | DFT | before | after | change |",
        "|---|---|---|---|---|---|",
    ]
    for split, errors in data["splits"].items():
        n = errors["before"]["n_structures"]
        for key, unit in QUANTITIES:
            b, a = errors["before"][key], errors["after"][key]
            lines.append(
                f"| {split} ({n} structures): {key} MAE | {unit} | - | {_fmt(b)} | {_fmt(a)} "
                f"| {_change(b, a)} |"
            )
    for row in data["short_range"]:
        b, a, dft = row["baseline"], row["model"], row["dft"]
        err = (
            f"|err| {_fmt(abs(b - dft))} -> {_fmt(abs(a - dft))}"
            if None not in (a, b, dft)
            else "-"
        )
        lines.append(
            f"| {row['quantity']} | {row['unit']} | {_fmt(dft)} | {_fmt(b)} | {_fmt(a)} | {err} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Evaluate both models, run the short-range validate rows, write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True, choices=("si", "lif", "ag"))
    parser.add_argument("--before", required=True, help="model trained on the original splits")
    parser.add_argument("--after", required=True, help="same recipe on data/<system>/grown")
    parser.add_argument("--label", default="", help="what the pair is (variant, seed, recipe)")
    parser.add_argument("--out", type=Path, required=True, help="OUT.md / OUT.json")
    parser.add_argument("--quick", action="store_true", help="validate's small settings")
    args = parser.parse_args(argv)
    data_dir = ROOT / "data" / args.system
    splits = {
        "original test": data_dir / "test.extxyz",
        "active test": data_dir / "grown" / "test_active.extxyz",
    }
    for path in splits.values():
        if not path.exists():
            parser.error(f"{path} is missing (merge the labels first: pansim learn ... --merge)")
    from workflows.validate import validate

    result = {
        "system": args.system,
        "label": args.label,
        "before": args.before,
        "after": args.after,
        "command": "python scripts/active_effect.py "
        + shlex.join(argv if argv is not None else sys.argv[1:]),
        "splits": {
            name: {"before": split_errors(args.before, p), "after": split_errors(args.after, p)}
            for name, p in splits.items()
        },
    }
    report = validate(
        args.after,
        args.system,
        baseline=args.before,
        out=args.out.parent / f"{args.out.name}-validate",
        quick=args.quick,
        skip=("elastic", "phonons", "md", "liquid"),
    )
    result["short_range"] = [r for r in report["table"] if r["quantity"] in SHORT_RANGE_ROWS]
    from pansim.files import write_json_atomic, write_text_atomic

    write_json_atomic(args.out.with_suffix(".json"), result)
    table = markdown(result)
    write_text_atomic(args.out.with_suffix(".md"), table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
