"""``pansim data``: sample, label, inspect and check the reference datasets (thin CLI).

Examples::

    pansim data sample si -n 300            # queue configurations in data/si/manifest.json
    pansim data sample si --refresh-pending # redraw unlabelled ones after a sampler change
    pansim data reference si                # queue the docs/spec.md §2.4 reference-property jobs
    pansim data label                       # label every queue round-robin, resumable
    pansim data label si lif --workers 2
    pansim data info [SYSTEM]
    pansim data relabel si si-s0-0003       # rerun one stored configuration, compare labels

Molecule DFT reference properties: ``pansim molref ethanol`` (:mod:`workflows.molecule_reference`).
"""

from __future__ import annotations

import argparse
import json
import sys


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``data`` subcommands."""
    parser.add_argument(
        "--data-dir", default=None, help="datasets folder (default: data/ or $PANSIM_DATA_DIR)"
    )
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p = sub.add_parser("sample", help="queue sampled configurations of a system")
    p.add_argument("system", help="system name or 'all'")
    p.add_argument(
        "-n", type=int, default=None, help="number of configurations (default: the system's)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", type=int, default=0, help="index of the first configuration")
    p.add_argument(
        "--refresh-pending",
        action="store_true",
        help="crystals: redraw queued, not yet labelled configurations with the current sampler "
        "(labelled ones are never touched; refused while a labeller runs)",
    )

    p = sub.add_parser(
        "reference", help="queue the DFT reference-property jobs of a crystal (docs/spec.md §2.4)"
    )
    p.add_argument("system", help="crystal name or 'all'")

    p = sub.add_parser("label", help="label pending jobs (resumable; round-robin over systems)")
    p.add_argument("systems", nargs="*", help="systems to label (default: every queue)")
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes at once (one core each)"
    )
    p.add_argument("--limit", type=int, default=None, help="stop after this many jobs")
    p.add_argument("--retry-failed", action="store_true", help="run failed jobs again")
    p.add_argument("--timeout", type=float, default=4 * 3600, help="seconds per job")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--no-reference", action="store_true", help="skip reference-property queues")
    only.add_argument(
        "--reference-only", action="store_true", help="only the reference-property queues"
    )
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("info", help="counts, elements, label statistics, provenance")
    p.add_argument("system", nargs="?", default=None)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("export", help="rewrite the extended XYZ files from the manifest")
    p.add_argument("system")

    p = sub.add_parser(
        "relabel", help="recompute one stored configuration and compare with its labels"
    )
    p.add_argument("system")
    p.add_argument("config_id")


def _systems(name: str) -> list[str]:
    from pansim.data.datasets import SYSTEMS, get_system

    return list(SYSTEMS) if name == "all" else [get_system(name).name]


def run(args: argparse.Namespace) -> int:
    """Dispatch one ``pansim data`` action."""
    from pansim.data import build
    from pansim.data.labelers import LabelError
    from pansim.data.manifest import ManifestError

    try:
        return _ACTIONS[args.data_command](args, build)
    except (ManifestError, LabelError, KeyError, FileNotFoundError) as exc:
        print(f"pansim data: error: {exc}", file=sys.stderr)
        return 2


def _sample(args, build) -> int:
    for name in _systems(args.system):
        kw = dict(seed=args.seed, start=args.start, root=args.data_dir)
        if args.refresh_pending and build.get_system(name).kind != "crystal":
            print(f"{name}: skipped (only the crystal sampler is versioned)")
        elif args.refresh_pending:
            counts = build.refresh_pending(name, args.n, **kw)
            print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        else:
            print(f"{name}: {build.sample(name, args.n, **kw)} new configurations queued")
    return 0


def _reference(args, build) -> int:
    from pansim.data.systems import CRYSTALS

    names = list(CRYSTALS) if args.system == "all" else [args.system.lower()]
    for name in names:
        print(f"{name}: {build.queue_reference(name, root=args.data_dir)} reference jobs queued")
    return 0


def _label(args, build) -> int:
    s = build.label(
        args.systems or None,
        root=args.data_dir,
        workers=args.workers,
        limit=args.limit,
        retry_failed=args.retry_failed,
        timeout=args.timeout,
        reference=not args.no_reference,
        datasets=not args.reference_only,
        progress=not args.no_progress,
    )
    print(f"labelled {s.done}, failed {s.failed} in {s.seconds:.0f} s")
    for q, key, why in s.failures:
        print(f"  failed {q}/{key}: {why[:200]}")
    return 0 if not s.failures else 1


def _info(args, build) -> int:
    report = build.info(args.system, root=args.data_dir)
    print(json.dumps(report, indent=1) if args.json else build.format_info(report))
    return 0


def _export(args, build) -> int:
    print(json.dumps(build.export(args.system, root=args.data_dir)))
    return 0


def _relabel(args, build) -> int:
    cmp = build.relabel(args.system, args.config_id, root=args.data_dir)
    print(json.dumps(cmp, indent=1))
    return 0 if cmp["reproduced"] else 1


_ACTIONS = {
    "sample": _sample,
    "reference": _reference,
    "label": _label,
    "info": _info,
    "export": _export,
    "relabel": _relabel,
}
