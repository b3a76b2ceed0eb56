"""``pansim learn CONFIG.yaml [--stop-after STAGE]``: the resumable active-learning loop."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``learn`` arguments."""
    from workflows.learn.config import STAGES

    parser.description = __doc__.splitlines()[0]
    parser.add_argument("config", help="YAML file (docs/active_learning.md)")
    parser.add_argument(
        "--stop-after",
        choices=STAGES,
        help="return after this stage of the current round (rerun to continue)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="run nothing: write the data set grown by the labels (workflows/learn/merge.py)",
    )
    parser.add_argument("--into", help="--merge: output folder (default <data folder>/grown)")
    parser.add_argument(
        "--allow-pending", action="store_true", help="--merge: leave pending labels out"
    )
    parser.add_argument(
        "--status",
        action="store_true",
        help="run nothing: update the round log from the labels so far and print it",
    )


def run(args: argparse.Namespace) -> int:
    """Run the loop; exit code 0, or 2 on a bad configuration."""
    from pansim.data.manifest import ManifestError
    from pansim.training.config import ConfigError
    from workflows.learn.config import LearnConfigError, load_config
    from workflows.learn.loop import run as run_loop
    from workflows.learn.merge import MergeError, merge

    try:
        cfg = load_config(args.config)
        if args.merge:
            cmd = ["pansim", "learn", args.config, "--merge"]
            cmd += ["--into", args.into] if args.into else []
            cmd += ["--allow-pending"] if args.allow_pending else []
            record = merge(cfg, args.into, args.allow_pending, command=" ".join(cmd))
            for split, c in record["counts"].items():
                print(f"{split:12s} {c['original']:5d} original + {c['added']:4d} labels")
            return 0
        if args.status:
            from workflows.learn.loop import refresh_status

            state = refresh_status(cfg)
        else:
            state = run_loop(cfg, stop_after=args.stop_after, progress=not args.no_progress)
    except (LearnConfigError, ConfigError, ManifestError, MergeError) as err:
        print(f"pansim learn: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    table = Path(cfg["work_dir"]) / "rounds.md"
    if table.exists():
        print(table.read_text())
    if state["stopped"]:
        print(f"stopped: {state['stopped']}")
    return 0
