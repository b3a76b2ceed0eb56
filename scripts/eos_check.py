r"""Physical E(V) check of crystal models: local bulk modulus B(V) against DFT (issue 23).

For each model, runs the EOS workflow (``workflows.eos.equation_of_state``: relax, scan
+-6 % in volume, Birch-Murnaghan fit, B(V) = -V dP/dV at every point) on the primitive
cell of its system and applies ``workflows.bulk_modulus.bulk_modulus_checks`` with the
DFT B0 of ``data/<system>/reference/properties.json``: B(V) must fall monotonically with
V over +-6 % around V0, and B(V0) must lie within 10 % of the DFT B0.

    python scripts/eos_check.py --system si --out results/converged/eos_check_si.md \
        --models si si-baseline results/converged/si/baseline-seed0/best_model.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # lab/ (research bookkeeping, not installed)

from lab.eos import check  # noqa: E402


def markdown(system: str, rows: list[dict]) -> str:
    """A table: fit, B(V0), the two checks, and B(V) at every scanned V/V0."""
    ratios = list(rows[0]["B_of_V"])
    head = ["model", "B0 fit", "B0'", "B(V0)", "monotone", "B(V0) within 10 % of DFT"]
    lines = [
        f"# E(V) check, {system} (DFT B0 {rows[0]['dft_B0']:.1f} GPa)",
        "",
        "Written by `python scripts/eos_check.py`. GPa; B(V) = -V dP/dV on the EOS scan.",
        "",
        "| " + " | ".join(head + [f"B at {r}" for r in ratios]) + " |",
        "|" + "---|" * (len(head) + len(ratios)),
    ]
    for row in rows:
        cells = [
            f"`{row['model']}`",
            f"{row['B0']:.1f}",
            f"{row['B0_prime']:.2f}",
            f"{row['B_V0']:.1f}",
            "yes" if row["monotone"] else "**no**",
            "yes" if row["B_V0_within_10pct"] else "**no**",
        ] + [f"{b:.1f}" for b in row["B_of_V"].values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Check every model; write the table (and JSON beside it) when ``--out`` is given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True, choices=("si", "lif", "ag"))
    parser.add_argument("--models", nargs="+", required=True, help="names or model files")
    parser.add_argument("--out", type=Path, help="Markdown table (a .json is written beside)")
    args = parser.parse_args(argv)
    rows = [check(args.system, model) for model in args.models]
    table = markdown(args.system, rows)
    print(table)
    if args.out:
        from pansim.files import write_json_atomic, write_text_atomic

        write_text_atomic(args.out, table)
        write_json_atomic(args.out.with_suffix(".json"), rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
