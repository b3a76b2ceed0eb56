"""``pansim replay MODEL --out replay.xyz (--structures FILE | --sample SYSTEM --n N)``.

Labels structures with a source model (pseudo-labels) for ``replay_file`` in a
fine-tuning config: the structures of an extended-XYZ file, or ``N`` sampled by
pansim's crystal sampler for a system (``si``, ``lif``, ``ag``, ...). The model is a
pansim model file or registered name, or a mace-torch file (with ``--trust-pickle``).
"""

from __future__ import annotations

import argparse
import sys


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``replay`` arguments."""
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("model", help="source model: pansim file or name, or mace-torch file")
    parser.add_argument("--out", required=True, help="extended-XYZ file to write")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--structures", help="extended-XYZ file of structures to label")
    source.add_argument("--sample", metavar="SYSTEM", help="sample crystals of this system")
    parser.add_argument("--n", type=int, default=32, help="structures to sample (--sample)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (--sample)")
    parser.add_argument("--trust-pickle", action="store_true", help="allow a mace-torch file")
    parser.add_argument("--energy-key", default="REF_energy")
    parser.add_argument("--forces-key", default="REF_forces")
    parser.add_argument("--stress-key", default="REF_stress")


def _source(model: str, trust_pickle: bool):
    """A pansim file or name as is; a mace-torch file grafted (variant baseline) in memory."""
    from pathlib import Path

    from pansim.grafting import file_kind, graft

    if Path(model).is_file() and file_kind(model) != "pansim":
        return graft(model, "baseline", trust_pickle=trust_pickle)
    return model


def _structures(args: argparse.Namespace) -> list:
    if args.structures:
        from pansim.training.data import read_structures

        return read_structures(args.structures)
    from pansim.data.sampling import sample_crystal
    from pansim.data.systems import CRYSTALS

    if args.sample not in CRYSTALS:
        raise ValueError(f"unknown system {args.sample!r}; known: {sorted(CRYSTALS)}")
    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    return sample_crystal(args.sample, args.n, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    """Label and write; exit code 0 on success, 2 on bad input."""
    import ase.io

    from pansim._io import atomic_path
    from pansim.training.finetune import label_with_model

    keys = (args.energy_key, args.forces_key, args.stress_key)
    try:
        frames = label_with_model(_source(args.model, args.trust_pickle), _structures(args), keys)
    except (ValueError, KeyError, FileNotFoundError) as err:
        print(f"pansim replay: error: {err}", file=sys.stderr)
        return 2
    with atomic_path(args.out) as tmp:
        ase.io.write(tmp, frames, format="extxyz")
    print(f"wrote {len(frames)} structures labelled by {args.model} to {args.out}")
    return 0
