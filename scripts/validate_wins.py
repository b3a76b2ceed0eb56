r"""Which model of each validated pair is closer to DFT, property by property (issue 23, point 5).

Reads the committed ``pansim validate`` reports (``results/validate/<name>/report.json``)
and scores every row that has a direction:

- a row with a DFT value: the smaller |value - DFT| wins;
- a row that is itself an error against DFT (``... vs DFT``, ``RMSE``, ``MAE``): smaller;
- ``softening ratio (1 = DFT)``: closer to 1; ``drift``: smaller in magnitude;
- ``imaginary modes``: fewer; ``B(V) falls with V``: 1 (yes) wins over 0.

Rows without a direction (E0, K_VRH, RDF peak positions without a DFT liquid) are not
scored. Two scores closer than :data:`TIE` (relative to the larger) are a tie, so
differences in the last digits of a fit are not counted as wins.

    python scripts/validate_wins.py                       # results/validate/wins.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: relative difference of two scores below which the row is a tie
TIE = 0.01


def score(row: dict, which: str) -> float | None:
    """The badness of ``which`` (``model`` or ``baseline``) on ``row`` (lower is better)."""
    value = row.get(which)
    if value is None:
        return None
    q = row["quantity"]
    if row.get("dft") is not None:
        return abs(value - row["dft"])
    if "vs DFT" in q or "RMSE" in q or "MAE" in q:
        return abs(value)
    if q.startswith("softening ratio"):
        return abs(value - 1.0)
    if "drift" in q:
        return abs(value)
    if q.startswith("imaginary modes"):
        return float(value)
    if q.startswith("B(V) falls with V"):
        return 1.0 - float(value)
    return None


def verdict(row: dict) -> str | None:
    """``model``, ``baseline``, ``tie``, or None for a row without a direction."""
    m, b = score(row, "model"), score(row, "baseline")
    if m is None or b is None:
        return None
    if abs(m - b) <= TIE * max(abs(m), abs(b), 1e-300):
        return "tie"
    return "model" if m < b else "baseline"


def tally(report: dict) -> dict:
    """Scored rows of one report and the counts."""
    rows = []
    for row in report["table"]:
        v = verdict(row)
        if v is not None:
            rows.append({"quantity": row["quantity"], "closer": v})
    return {
        "model": report["model"],
        "baseline": report["baseline"],
        "rows": rows,
        "model_wins": sum(r["closer"] == "model" for r in rows),
        "baseline_wins": sum(r["closer"] == "baseline" for r in rows),
        "ties": sum(r["closer"] == "tie" for r in rows),
    }


def markdown(tallies: dict[str, dict]) -> str:
    """Counts per pair, then every scored row."""
    lines = [
        "# Which model is closer to DFT: wins per validated pair",
        "",
        "Written by `python scripts/validate_wins.py` from `results/validate/*/report.json`. "
        f"Ties: scores within {100 * TIE:g} % of each other.",
        "",
        "| report | model | baseline | model closer | baseline closer | tie |",
        "|---|---|---|---|---|---|",
    ]
    for name, t in tallies.items():
        lines.append(
            f"| {name} | `{t['model']}` | `{t['baseline']}` | {t['model_wins']} "
            f"| {t['baseline_wins']} | {t['ties']} |"
        )
    for name, t in tallies.items():
        lines += ["", f"## {name}", "", "| quantity | closer to DFT |", "|---|---|"]
        lines += [f"| {r['quantity']} | {r['closer']} |" for r in t["rows"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Tally every report under ``--reports`` and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=Path, default=ROOT / "results" / "validate")
    parser.add_argument("--out", type=Path, help="default: REPORTS/wins.md")
    args = parser.parse_args(argv)
    tallies = {
        path.parent.name: tally(json.loads(path.read_text()))
        for path in sorted(args.reports.glob("*/report.json"))
    }
    if not tallies:
        parser.error(f"no */report.json under {args.reports}")
    from pansim.files import write_text_atomic

    text = markdown(tallies)
    write_text_atomic(args.out or args.reports / "wins.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
