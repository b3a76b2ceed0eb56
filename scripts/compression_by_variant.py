"""Which module softens the crystals under compression? E(0.80 V0) per variant and seed.

For every trained MACE run of a crystal (``results/training/<system>/<variant>-seed<k>``)
this evaluates the perfect primitive cell at the DFT equilibrium volume V0 and at
0.80 V0 (the ``E(0.80 V0) - E0`` row of ``pansim validate``, here at the DFT V0 for
every model, so the models are compared at the same cells) and, for models with PAN,
the smooth coordination ``c_i`` PAN sees at those volumes against the training set's
coordination range. Writes ``results/validate/compression_by_variant.md``.

Usage (from the repository root)::

    python scripts/compression_by_variant.py [--systems ag lif si]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from ase.io import read

from pansim import PANCalculator
from pansim.backbones import VARIANTS
from pansim.data.reference import primitive_at
from pansim.data.systems import CRYSTALS, crystal_cell
from pansim.files import write_text_atomic
from pansim.modules.pan import PANPooling

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # lab/ (research bookkeeping, not installed)
SCALES = (1.0, 0.9, 0.8)


def finished_runs(system: str) -> list[tuple[str, int, Path]]:
    """``(variant, seed, best model)`` of every finished run of ``system`` in the plan."""
    from lab.plan import jobs_in, status

    jobs = jobs_in(ROOT / "configs" / "pretrained", [system], root=ROOT)
    done = [job for job in jobs if status(job) == "done"]
    done.sort(key=lambda job: (VARIANTS.index(job.variant), job.seed))
    return [(job.variant, job.seed, job.out_dir / "best_model.safetensors") for job in done]


def compressed(system: str, v0_per_atom: float, scale: float):
    """The perfect primitive cell of ``system`` at ``scale`` times the volume V0 (per atom)."""
    return primitive_at(system, scale * v0_per_atom * len(crystal_cell(system)))


def first_pan(calc: PANCalculator) -> PANPooling | None:
    """The PAN module of the first interaction of ``calc``'s model (None without PAN)."""
    return next((m for m in calc.model.modules() if isinstance(m, PANPooling)), None)


def first_pan_coordination(calc: PANCalculator, atoms) -> np.ndarray | None:
    """``c_i`` of the first PAN layer of ``calc``'s model on ``atoms`` (None without PAN)."""
    pan = first_pan(calc)
    if pan is None:
        return None
    seen: list[np.ndarray] = []
    hook = pan.register_forward_hook(
        lambda module, inputs, _: seen.append(module.coordination(*inputs).detach().numpy())
    )
    try:
        atoms = atoms.copy()
        atoms.calc = calc
        atoms.get_potential_energy()
    finally:
        hook.remove()
    return seen[0]


def system_rows(system: str) -> tuple[list[str], list[str]]:
    """Markdown rows of the energy table and the coordination table for ``system``."""
    props = json.loads((ROOT / "data" / system / "reference" / "properties.json").read_text())
    v0, e0 = props["eos"]["V0"], props["eos"]["E0"]
    eos = props["eos"]["compressed"]
    dft = dict(zip(eos["volume_ratio"], eos["energy"], strict=True))
    energy_rows = [f"| {system} | DFT | - | {dft[0.8] - e0:.4f} | {dft[0.9] - e0:.4f} |"]
    coordination_rows = []
    train = read(ROOT / "data" / system / "train.extxyz", ":")
    for variant, seed, path in finished_runs(system):
        calc = PANCalculator(model=str(path))
        energy = {}
        for scale in SCALES:
            atoms = compressed(system, v0, scale)
            atoms.calc = calc
            energy[scale] = atoms.get_potential_energy() / len(atoms)
        energy_rows.append(
            f"| {system} | {variant} | {seed} | {energy[0.8] - energy[1.0]:.4f} "
            f"| {energy[0.9] - energy[1.0]:.4f} |"
        )
        if variant == "pan" and seed == 0:
            c_train = np.concatenate([first_pan_coordination(calc, a) for a in train])
            c_max = float(first_pan(calc).centers[-1])
            at = {
                s: float(first_pan_coordination(calc, compressed(system, v0, s)).max())
                for s in SCALES
            }
            p50, p99 = np.percentile(c_train, [50, 99])
            coordination_rows.append(
                f"| {system} | {at[1.0]:.2f} | {at[0.9]:.2f} | {at[0.8]:.2f} | {p50:.2f} "
                f"| {p99:.2f} | {c_train.max():.2f} | {c_max:.2f} |"
            )
    return energy_rows, coordination_rows


def main(argv: list[str] | None = None) -> str:
    """Build both tables, write them, print them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", nargs="+", default=sorted(CRYSTALS), choices=sorted(CRYSTALS))
    parser.add_argument(
        "--out", type=Path, default=ROOT / "results" / "validate" / "compression_by_variant.md"
    )
    args = parser.parse_args(argv)
    energy, coordination = [], []
    for system in args.systems:
        e, c = system_rows(system)
        energy += e
        coordination += c
    text = "\n".join(
        [
            "# Compression by variant (`python scripts/compression_by_variant.py`)",
            "",
            "Energy per atom above the DFT V0 of the perfect primitive cell, eV/atom (DFT: its",
            "Birch-Murnaghan E0). Every model is evaluated at the same cells (DFT V0).",
            "",
            "| system | model | seed | E(0.80 V0) - E(V0) | E(0.90 V0) - E(V0) |",
            "| --- | --- | --- | ---: | ---: |",
            *energy,
            "",
            "PAN's smooth coordination c_i (first interaction, `pan` seed 0) at V0, 0.90 V0,",
            "0.80 V0, against the training set's distribution and the top of PAN's Gaussian",
            "basis (c_max):",
            "",
            "| system | c at V0 | c at 0.90 V0 | c at 0.80 V0 | train median | train 99th pct | train max | c_max |",  # noqa: E501
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *coordination,
            "",
        ]
    )
    write_text_atomic(args.out, text)
    print(text)
    return text


if __name__ == "__main__":
    main()
