"""Stored DFT reference points analysed by the workflows' own fits, against the committed values.

No DFT is run: the energies and stresses are those stored in
``data/<system>/reference/jobs.json``. For each crystal whose stage is finished:

* **EOS**: the same points the reference builder fits (volume scale >= 0.94 of
  the spec cell), fitted by :func:`workflows.eos.fit_birch_murnaghan` (the fit
  the models' ``equation_of_state`` uses; GPa from ``ase.units``), against
  ``eos.json`` (``ase.eos`` Birch-Murnaghan, GPa from a constant of its own);
* **elastic**: the stored +-strain stresses of the uniaxial (xx) and shear (yz)
  cells, fitted column by column by :func:`workflows.elastic.fit_columns` (the
  least-squares slope the models' ``elastic_constants`` uses), against
  ``elastic.json`` (central differences). The yy and zz columns are the xx
  column permuted (cubic cells; the stored jobs strain xx only).

Prints the before/after table and writes it into ``docs/dft_reference_analysis.md``
between its markers (``--out``). Usage (from the repository root)::

    python scripts/reanalyse_dft_reference.py [--systems ag lif si]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from ase import units

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workflows.elastic import fit_columns  # noqa: E402
from workflows.eos import fit_birch_murnaghan  # noqa: E402

#: markers of the generated table in the docs page
START, END = "<!-- reanalyse_dft_reference: start", "<!-- reanalyse_dft_reference: end -->"
#: Voigt components under the cyclic relabelling x -> y -> z
CYCLE = [2, 0, 1, 5, 3, 4]


def _stage(entries: dict, stage: str) -> list[dict]:
    done = [e for e in entries.values() if e["provenance"].get("stage") == stage]
    return done if done and all(e["status"] == "done" for e in done) else []


def eos_rows(entries: dict, committed: dict) -> list[tuple[str, str, float, float]]:
    """``(quantity, unit, committed, workflow fit)`` of the EOS."""
    near = [e for e in _stage(entries, "eos") if e["provenance"]["volume_scale"] >= 0.94]
    if not near:
        return []
    vol = np.array([abs(np.linalg.det(e["job"]["atoms"]["cell"])) for e in near])
    energy = np.array([e["result"]["energy"] for e in near])
    (e0, v0, b0, bp), _ = fit_birch_murnaghan(vol, energy)
    new = {"V0_A3": v0, "E0_eV": e0, "B0_GPa": b0 / units.GPa, "B0_prime": bp}
    unit = {"V0_A3": "A^3/cell", "E0_eV": "eV/cell", "B0_GPa": "GPa", "B0_prime": "-"}
    return [(f"EOS {k}", unit[k], float(committed[k]), float(new[k])) for k in new]


def _voigt(s: np.ndarray) -> np.ndarray:
    return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


def elastic_rows(entries: dict, committed: dict) -> list[tuple[str, str, float, float]]:
    """``(quantity, unit, committed, workflow fit)`` of C11, C12, C44."""
    jobs = _stage(entries, "elastic")
    if len(jobs) < 4:
        return []
    by = {(e["provenance"]["component"], np.sign(e["provenance"]["strain"])): e for e in jobs}
    strain = abs(jobs[0]["provenance"]["strain"])
    strains = np.array([-strain, strain])
    xx = np.array([_voigt(np.array(by["xx", s]["result"]["stress"])) for s in (-1, 1)])
    yz = np.array([_voigt(np.array(by["yz", s]["result"]["stress"])) for s in (-1, 1)])
    yy, xz = xx[:, CYCLE], yz[:, CYCLE]  # x -> y -> z
    zz, xy = yy[:, CYCLE], xz[:, CYCLE]
    # stored shear cells: eps_yz = eps_zy = strain / 2, i.e. Voigt (engineering) strain = strain
    c, _ = fit_columns(strains, np.stack([xx, yy, zz, yz, xz, xy]))
    new = {
        "C11_GPa": c[0, 0] / units.GPa,
        "C12_GPa": 0.5 * (c[1, 0] + c[2, 0]) / units.GPa,
        "C44_GPa": c[3, 3] / units.GPa,
    }
    return [(f"elastic {k[:3]}", "GPa", float(committed[k]), float(new[k])) for k in new]


def system_rows(system: str) -> list[tuple[str, str, float, float]]:
    """All rows of ``system`` whose stage is finished and committed."""
    folder = ROOT / "data" / system / "reference"
    if not (folder / "jobs.json").is_file():
        return []
    entries = json.loads((folder / "jobs.json").read_text())["entries"]
    rows = []
    for name, fn in (("eos", eos_rows), ("elastic", elastic_rows)):
        if (folder / f"{name}.json").is_file():
            rows += fn(entries, json.loads((folder / f"{name}.json").read_text()))
    return rows


def table(results: dict[str, list[tuple[str, str, float, float]]]) -> str:
    """Markdown table: committed value, workflow-fit value, difference (absolute and relative)."""
    lines = [
        "| system | quantity | unit | committed (builder) | workflow fit | change | relative |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for system, rows in results.items():
        for q, unit, old, new in rows:
            rel = (new - old) / abs(old) if old else float("nan")
            cells = [
                system,
                q,
                unit,
                f"{old:.10g}",
                f"{new:.10g}",
                f"{new - old:+.3e}",
                f"{rel:+.2e}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Re-analyse every finished system; print and write the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--systems", nargs="*", default=["ag", "lif", "si"])
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "dft_reference_analysis.md")
    args = p.parse_args(argv)
    results = {s: r for s in args.systems if (r := system_rows(s))}
    text = table(results)
    print(text, end="")
    from lab.splice import replace_between_markers

    block = f"{START} -->\n{text}{END}"
    if not replace_between_markers(args.out, START, END, block):
        print(f"{args.out}: no {START} ... {END} markers; table not written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
