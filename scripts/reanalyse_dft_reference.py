"""Stored DFT reference points analysed by the workflows' own code, against the committed values.

No DFT is run: the energies, stresses and forces are those stored in
``data/<system>/reference/jobs.json``. For each crystal whose stage is finished,
the equation of state is fitted by :func:`workflows.eos.fit_birch_murnaghan`
(GPa from ``ase.units``), C11, C12, C44 by :func:`workflows.elastic.fit_columns`
(through :func:`pansim.data.reference.cubic_constants`), and the phonons are
computed by :func:`workflows.phonons.phonons` itself, with the stored DFT forces
as its calculator; the results are compared with the committed ``eos.json``,
``elastic.json`` and ``phonons.json``. Since the builder uses these same fits
(:mod:`pansim.fits`) and phonon analysis (:mod:`pansim.phonons`) the change column
is zero, to the optimiser's last digits; the tables of what moved when the builder
switched to them are in ``docs/dft_reference_analysis.md``. Usage (from the
repository root)::

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

from pansim.data.reference import cubic_constants  # noqa: E402
from workflows.eos import fit_birch_murnaghan  # noqa: E402 - the workflow's own fit


def _stage(entries: dict, stage: str) -> list[dict]:
    """The jobs of ``stage`` when every one is done, else []."""
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


def elastic_rows(entries: dict, committed: dict) -> list[tuple[str, str, float, float]]:
    """``(quantity, unit, committed, workflow fit)`` of C11, C12, C44."""
    jobs = _stage(entries, "elastic")
    if len(jobs) < 4:
        return []
    stress = {
        e["provenance"]["component"] + ("p" if e["provenance"]["strain"] > 0 else "m"): np.array(
            e["result"]["stress"]
        )
        for e in jobs
    }
    c = cubic_constants(stress, abs(jobs[0]["provenance"]["strain"]))
    new = dict(zip(("C11_GPa", "C12_GPa", "C44_GPa"), (x / units.GPa for x in c), strict=True))
    return [(f"elastic {k[:3]}", "GPa", float(committed[k]), float(new[k])) for k in new]


class StoredForces:
    """The stored DFT forces of the phonon supercells as a calculator (``batch_evaluate``)."""

    implemented_properties = ("energy", "forces")

    def __init__(self, jobs: dict):
        from pansim.data.reference import stored_forces

        self.forces = stored_forces(jobs)

    def batch_evaluate(self, structures: list) -> list[dict]:
        """Forces (eV/A) of each supercell, from its finished job."""
        return [{"forces": f} for f in self.forces(structures)]


#: frequencies below this (THz) are the acoustic modes at Gamma: zero up to round-off
ACOUSTIC_THZ = 1e-3


def phonon_rows(entries: dict, committed: dict) -> list[tuple[str, str, float, float]]:
    """``(quantity, unit, committed, workflow)`` of the frequencies at Gamma, X and L."""
    from pansim.data.labelers import dict_to_atoms
    from workflows.phonons import phonons

    done = _stage(entries, "phonon")
    jobs = {key: e for key, e in entries.items() if e in done}
    if "phonon-residual" not in jobs:
        return []
    first = jobs["phonon-residual"]["provenance"]
    res = phonons(
        dict_to_atoms(first["unitcell"]),
        StoredForces(jobs),
        supercell=(2, 2, 2),
        displacement=first["distance_A"],
        relax_first=False,
        relax_cell=False,
    )
    rows = []
    for q, old in committed["frequencies_THz"].items():
        new = res.high_symmetry_THz[q]
        for k, (a, b) in enumerate(zip(old, new, strict=True)):
            if abs(a) > ACOUSTIC_THZ:
                rows.append((f"phonon {q} mode {k + 1}", "THz", float(a), float(b)))
    return rows


def system_rows(system: str) -> list[tuple[str, str, float, float]]:
    """All rows of ``system`` whose stage is finished and committed."""
    folder = ROOT / "data" / system / "reference"
    if not (folder / "jobs.json").is_file():
        return []
    entries = json.loads((folder / "jobs.json").read_text())["entries"]
    rows = []
    for name, fn in (("eos", eos_rows), ("elastic", elastic_rows), ("phonons", phonon_rows)):
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
    args = p.parse_args(argv)
    results = {s: r for s in args.systems if (r := system_rows(s))}
    text = table(results)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
