"""The model call alone: pansim's baseline MACE against mace-torch's, same weights.

``benchmarks.calculator`` times whole ``calculate`` calls, where the model call is 99.8 %
of the time at 1000 atoms. This times only that call (energy, forces and stress: the
``forward_backward`` stage of both calculators) on one Si cell, interleaved with an A/A
control (a second ``MACECalculator`` on the same file), and prints median CPU and user
time ratios over mace and the 10th / 50th / 90th percentiles of the per-round ratios.

Usage (from the repository root, on a quiet machine)::

    python -m benchmarks.model_call [--atoms 1000] [--rounds 25] [--dtype float64]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python benchmarks/model_call.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks import _common as common  # noqa: E402
from benchmarks import calculator as bench  # noqa: E402


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Time the three model calls; print and return medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--atoms", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--dtype", choices=sorted(common.DTYPES), default="float64")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = common.build("baseline", args.dtype, None)
    atoms = common.si_cell(args.atoms)
    with tempfile.TemporaryDirectory() as directory:
        pan, mace, again = bench.calculators(model, args.dtype, directory, control=True)
        calls = {
            "pansim": bench.pansim_stages(pan, atoms)["forward_backward"],
            "mace": bench.mace_stages(mace, atoms)["forward_backward"],
            bench.CONTROL: bench.mace_stages(again, atoms)["forward_backward"],
        }
        samples = common.interleaved(calls, args.rounds)
    medians = {name: common.medians(s) for name, s in samples.items()}
    out = {}
    print(f"{len(atoms)} atoms, {args.dtype}, {args.threads} thread(s), {args.rounds} rounds")
    for name, m in medians.items():
        rounds = np.array(samples[name]["cpu"]) / np.array(samples["mace"]["cpu"])
        out[name] = {
            "cpu_s": m["cpu"],
            "cpu_ratio": m["cpu"] / medians["mace"]["cpu"],
            "user_ratio": m["user"] / medians["mace"]["user"],
            "round_ratio_p10_p50_p90": [float(x) for x in np.percentile(rounds, [10, 50, 90])],
        }
        r = out[name]
        print(
            f"{name:>13}: {m['cpu']:.4f} s CPU; over mace: CPU {r['cpu_ratio']:.4f}, user "
            f"{r['user_ratio']:.4f}; per round p10/p50/p90 "
            + "/".join(f"{x:.4f}" for x in r["round_ratio_p10_p50_p90"])
        )
    return out


if __name__ == "__main__":
    main()
