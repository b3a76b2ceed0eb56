r"""Causal probe of PAN's E(V): the same trained weights with PAN's amplitude frozen (issue 23).

Every Si model with PAN has a non-monotone local bulk modulus B(V) (docs/science.md §6).
The suspected cause: under uniform strain every coordination ``c_i`` moves together,
and PAN's amplitude ``s_i = 1 + tanh(MLP(g(c_i)))`` adds a volume-dependent factor with
a curvature of its own to every l = 0 message. This script tests that directly. For
each model it scans the primitive cell over V/V0 in [0.92, 1.08] (no relaxation is
needed: the diamond, rock-salt and fcc positions are fixed by symmetry), and computes
B(V) = -V dP/dV (``workflows.bulk_modulus.local_bulk_modulus``) twice:

- ``as trained``: the model as it is;
- ``s frozen``: every PAN layer returns the amplitudes it gives at V0, whatever the
  volume (a forward hook on each ``PANPooling``). All other weights are unchanged, so
  any difference between the two rows is due to s(c(V)) alone.

It also records, per PAN layer, the coordination ``c`` at V0 and its range over the scan,
the same layer's ``c`` over every atom of the training split (percentiles), the top of
its Gaussian basis (``c_max``), and the range of ``s`` over the scan.

    python scripts/pan_eos_probe.py --system si --models si \
        results/converged/si/pan-seed0/best_model.safetensors \
        --out results/converged/pan_eos_probe_si.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RATIOS = np.linspace(0.92, 1.08, 17)


class _Recorder:
    """Forward hooks on every PANPooling: record (c, s), optionally replace s by a frozen copy."""

    def __init__(self, model: torch.nn.Module) -> None:
        from pansim.modules.pan import PANPooling

        self.layers = [m for m in model.modules() if isinstance(m, PANPooling)]
        self.frozen: list[torch.Tensor] | None = None
        self.records: list[tuple[np.ndarray, np.ndarray]] = []
        for k, layer in enumerate(self.layers):
            layer.register_forward_hook(self._hook(k))

    def _hook(self, k: int):
        def hook(module, args, output):
            with torch.no_grad():
                c = module.coordination(*args).detach().cpu().numpy()
            self.records.append((c, output.detach().cpu().numpy()))
            if self.frozen is not None:
                return self.frozen[k].to(output)
            return output

        return hook

    def take(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Records of the last evaluation (one per PAN layer), cleared."""
        out, self.records = self.records[-len(self.layers) :], []
        return out


def _scan(atoms, calc, rec, v0_cell):
    """Volumes (A^3/atom), energies (eV/atom), pressures (eV/A^3) and PAN records per ratio."""
    vols, energies, pressures, recs = [], [], [], []
    for r in RATIOS:
        a = atoms.copy()
        a.set_cell(v0_cell * r ** (1 / 3), scale_atoms=True)
        a.calc = calc
        n = len(a)
        energies.append(a.get_potential_energy() / n)
        pressures.append(-np.trace(a.get_stress(voigt=False)) / 3)
        vols.append(a.get_volume() / n)
        recs.append(rec.take())
    return np.array(vols), np.array(energies), np.array(pressures), recs


def _v0_cell(atoms, calc):
    """Cell at the zero-pressure volume of the model (Birch-Murnaghan fit of a coarse scan)."""
    from pansim.fits import fit_birch_murnaghan

    vols, energies = [], []
    for r in np.linspace(0.94, 1.06, 7):
        a = atoms.copy()
        a.set_cell(atoms.cell * r ** (1 / 3), scale_atoms=True)
        a.calc = calc
        vols.append(a.get_volume())
        energies.append(a.get_potential_energy())
    (_, v0, _, _), _ = fit_birch_murnaghan(np.array(vols), np.array(energies))
    return atoms.cell.array * (v0 / atoms.get_volume()) ** (1 / 3)


def training_coordinations(calc, rec, system: str) -> list[np.ndarray]:
    """Per PAN layer: c of every atom of the training split."""
    from ase.io import read

    frames = read(ROOT / "data" / system / "train.extxyz", ":")
    per_layer: list[list[np.ndarray]] = []
    for f in frames:
        f = f.copy()
        f.calc = calc
        f.get_potential_energy()
        for k, (c, _) in enumerate(rec.take()):
            if len(per_layer) <= k:
                per_layer.append([])
            per_layer[k].append(c)
    return [np.concatenate(x) for x in per_layer]


def probe(system: str, model: str) -> dict:
    """B(V) as trained and with s frozen at V0, and the coordinations, for one model."""
    from pansim import PANCalculator
    from pansim.data.settings import crystal_cell
    from workflows.bulk_modulus import is_monotone_decreasing, local_bulk_modulus

    calc = PANCalculator(model=model, dtype="float64")
    rec = _Recorder(calc.model)
    if not rec.layers:
        raise SystemExit(f"{model}: no PAN layer")
    atoms = crystal_cell(system)
    cell0 = _v0_cell(atoms, calc)
    rec.take()
    rows = {}
    # as trained
    vols, e, p, recs = _scan(atoms, calc, rec, cell0)
    i0 = int(np.argmin(np.abs(RATIOS - 1.0)))
    v0_records = recs[i0]
    b = local_bulk_modulus(vols, pressures=p)
    v0 = vols[i0]
    rows["as trained"] = {
        "B": b.tolist(),
        "monotone": is_monotone_decreasing(vols, b, v0),
        "B_V0": float(b[i0]),
    }
    layers = []
    for k, layer in enumerate(rec.layers):
        c_scan = np.array([r[k][0].mean() for r in recs])
        s_scan = np.array([r[k][1] for r in recs])  # [ratios, atoms, channels]
        layers.append(
            {
                "c_max": float(layer.centers[-1]),
                "c_V0": float(v0_records[k][0].mean()),
                "c_scan": [float(c_scan.min()), float(c_scan.max())],
                "s_V0_mean": float(v0_records[k][1].mean()),
                "s_scan_channel_change_max": float(np.abs(s_scan - s_scan[i0][None]).max()),
            }
        )
    # frozen
    rec.frozen = [torch.from_numpy(r[1]) for r in v0_records]
    vols_f, e_f, p_f, _ = _scan(atoms, calc, rec, cell0)
    b_f = local_bulk_modulus(vols_f, pressures=p_f)
    rows["s frozen at V0"] = {
        "B": b_f.tolist(),
        "monotone": is_monotone_decreasing(vols_f, b_f, v0),
        "B_V0": float(b_f[i0]),
    }
    rec.frozen = None
    train_c = training_coordinations(calc, rec, system)
    for k, c in enumerate(train_c):
        layers[k]["train_c_percentiles_1_50_99"] = [float(x) for x in np.percentile(c, [1, 50, 99])]
    return {"model": model, "ratios": RATIOS.tolist(), "rows": rows, "layers": layers}


def markdown(system: str, results: list[dict]) -> str:
    """The two tables of the page (B(V) rows; coordinations and amplitudes per layer)."""
    ratios = results[0]["ratios"]
    lines = [
        f"# PAN E(V) probe, {system}",
        "",
        "Written by `python scripts/pan_eos_probe.py` (see its docstring). B(V) = -V dP/dV in "
        "GPa on the primitive cell, scanned around the model's own V0; `s frozen at V0`: every "
        "PAN layer returns its V0 amplitudes at every volume, all other weights unchanged.",
        "",
        "| model | PAN | B(V) monotone | B(V0) | "
        + " | ".join(f"B at {r:.2f}" for r in ratios)
        + " |",
        "|" + "---|" * (4 + len(ratios)),
    ]
    for res in results:
        for name, row in res["rows"].items():
            cells = [
                f"`{res['model']}`",
                name,
                "yes" if row["monotone"] else "**no**",
                f"{row['B_V0']:.1f}",
            ] + [f"{b:.1f}" for b in row["B"]]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Coordination seen by each PAN layer (dimensionless; `c` of the atoms at V0, its range "
        "over the scan, the training split's 1st/50th/99th percentiles, the top of the Gaussian "
        "basis) and the largest change of any amplitude s over the scan:",
        "",
        "| model | layer | c at V0 | c over scan | training c (p1, p50, p99) | c_max | "
        "mean s at V0 | max abs change of s over scan |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        for k, layer in enumerate(res["layers"]):
            p = layer["train_c_percentiles_1_50_99"]
            lines.append(
                f"| `{res['model']}` | {k} | {layer['c_V0']:.3f} | "
                f"{layer['c_scan'][0]:.3f} - {layer['c_scan'][1]:.3f} | "
                f"{p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f} | {layer['c_max']:.3f} | "
                f"{layer['s_V0_mean']:.3f} | {layer['s_scan_channel_change_max']:.4f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Probe every model; write the table (and JSON beside it) when ``--out`` is given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True, choices=("si", "lif", "ag"))
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = [probe(args.system, m) for m in args.models]
    table = markdown(args.system, results)
    print(table)
    if args.out:
        from pansim.files import write_json_atomic, write_text_atomic

        write_text_atomic(args.out, table)
        write_json_atomic(args.out.with_suffix(".json"), results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
