#!/usr/bin/env python
"""What the first epoch of a warm start does to the converged start, with and without warm-up.

Probe for issue 23 (docs/science.md section 3). For every run of a warm-start set
(``configs/warmstart/<system>/<variant>-seed<k>.yaml``: the control and the zero-started
grafts, identical predictions at step 0) it trains one epoch twice in memory, from the
same start and the same batch order: as configured (no warm-up) and with
``lr_warmup_steps`` = one epoch. It records the training loss of every step and the
validation loss after the epoch (EMA weights, as the trainer evaluates). Nothing is
written into the runs' folders; the test split is not touched.

    python scripts/warmstart_first_steps.py --system lif \
        --out results/warmstart/lif/first_steps
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("baseline", "pan", "pgs", "pan+pgs")


def one_epoch(config_path: Path, warmup: bool, scratch: Path) -> dict:
    """Train one epoch from the config's start; the step losses and the validation loss."""
    from pansim.training.config import load_config
    from pansim.training.trainer import Trainer

    overrides = {"out_dir": str(scratch), "progress": False, "test_file": None}
    trainer = Trainer(load_config(config_path, overrides))
    batches = trainer._batches(0)
    if warmup:  # one epoch of ramp; read at every step, nothing at construction uses it
        trainer.config = dataclasses.replace(trainer.config, lr_warmup_steps=len(batches))
    start = trainer.evaluate(trainer.data.valid)["loss"]
    losses = []
    for batch in batches:
        losses.append(trainer.train_step(batch))
        trainer.state.step += 1  # as the training loop counts: the warm-up ramp reads it
    return {"valid_loss_start": start, "train_losses": losses,
            "valid_loss_after": trainer.evaluate(trainer.data.valid)["loss"]}  # fmt: skip


def table(system: str, seed: int, rows: dict) -> str:
    """The markdown report."""
    lines = [
        f"# First epoch of the {system} warm start (seed {seed}), with and without warm-up",
        "",
        f"`python scripts/warmstart_first_steps.py --system {system} --seed {seed}`. Each run",
        "trains one epoch from its start (the converged baseline or its zero-started graft)",
        "in memory, as configured (`lr_warmup_steps` 0) and with a linear warm-up over that",
        "epoch; same start, same batch order. Losses: the trainer's weighted loss.",
        "",
        "| run | warm-up | valid loss at start | train loss, step 1 | step 2 | max over the epoch "
        "| mean over the epoch | valid loss after the epoch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (variant, warmup), r in rows.items():
        losses = r["train_losses"]
        lines.append(
            f"| {variant} | {'one epoch' if warmup else 'none'} | {r['valid_loss_start']:.6f} "
            f"| {losses[0]:.4g} | {losses[1]:.4g} | {max(losses):.4g} "
            f"| {sum(losses) / len(losses):.4g} | {r['valid_loss_after']:.6f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the probe and write ``OUT.md`` and ``OUT.json``; 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--configs", default="configs/warmstart")
    parser.add_argument("--out", help="default: results/warmstart/<system>/first_steps")
    args = parser.parse_args(argv)
    import torch

    from pansim._io import write_text_atomic

    torch.set_num_threads(1)
    out = Path(args.out or f"results/warmstart/{args.system}/first_steps")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in VARIANTS:
            path = ROOT / args.configs / args.system / f"{variant}-seed{args.seed}.yaml"
            for warmup in (False, True):
                scratch = Path(tmp) / f"{variant}-{warmup}"
                rows[variant, warmup] = one_epoch(path, warmup, scratch)
                after = rows[variant, warmup]["valid_loss_after"]
                print(variant, "warm-up" if warmup else "plain", after, flush=True)
    text = table(args.system, args.seed, rows)
    records = [{"variant": v, "warmup": w, **r} for (v, w), r in rows.items()]
    write_text_atomic(out.with_suffix(".json"), json.dumps(records, indent=1))
    write_text_atomic(out.with_suffix(".md"), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
