"""``pansim train CONFIG.yaml [--key value ...] [--resume]``: train a model.

Command-line values win over the file; model hyperparameters are overridden as
``--hyperparameters.num_channels 32``. Under ``torchrun --nproc_per_node=N -m
pansim train ...`` the global batch is sharded over N processes.
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` arguments."""
    import dataclasses

    from pansim.training.config import TrainConfig

    parser.description = __doc__.splitlines()[0]
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    defaults = [
        f"  {f.name} = {f.default if f.default is not dataclasses.MISSING else '{}'}"
        for f in dataclasses.fields(TrainConfig)
    ]
    parser.epilog = "config keys (defaults):\n" + "\n".join(defaults)
    parser.add_argument("config", help="YAML file of training settings (see TrainConfig)")
    parser.add_argument("--resume", action="store_true", help="continue from out_dir/checkpoint.pt")
    parser.add_argument(
        "overrides", nargs=argparse.REMAINDER, help="--key value pairs that override the file"
    )


def run(args: argparse.Namespace) -> int:
    """Train; exit code 0 on success, 2 on bad input, 3 when the loss diverged."""
    from pansim.training.checkpoint import CheckpointError
    from pansim.training.config import ConfigError, load_config, parse_overrides
    from pansim.training.data import DataError
    from pansim.training.trainer import TrainingDiverged, train

    tokens = list(args.overrides or [])
    resume = args.resume or "--resume" in tokens
    tokens = [t for t in tokens if t != "--resume"]
    try:
        config = load_config(args.config, parse_overrides(tokens))
        state = train(config, resume=resume)
    except (ConfigError, DataError, CheckpointError, FileNotFoundError) as err:
        print(f"pansim train: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrainingDiverged as err:
        print(f"pansim train: diverged: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    reason = state.stop_reason or f"max_epochs={config.max_epochs}"
    if os.environ.get("RANK", "0") != "0":
        return 0
    print(
        f"done: {state.epoch} epochs, {state.step} steps ({reason}); best epoch "
        f"{state.best_epoch}, valid loss {state.best_metric:.6g}; files in {config.out_dir}"
    )
    return 0
