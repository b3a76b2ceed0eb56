"""Run every benchmark with one preset and write results/bench/README.md (one command).

Presets:

- ``full``: the sizes of issue 6 (overhead: 64/512/4096 atoms, float32 and
  float64; calculator: 64 and 1000 atoms, 100 NVE steps; scaling: about 100 to
  20000 atoms; batched: phonons and elastic strains). Hours on 2 cores.
- ``quick``: small sizes and few repeats (overhead 64/512 atoms, 3 rounds;
  calculator float32, NVE 20 steps at 64 atoms; scaling up to 512 atoms;
  batched 3 rounds). Minutes. Its numbers are labelled ``quick``.
- ``smoke``: a tiny model, one tiny cell, one round (what the tests run).

Each benchmark writes ``<out-dir>/<name>.json`` and ``.md``; this script adds
``<out-dir>/README.md``: machine (CPU model from /proc/cpuinfo, cores, torch
threads), versions (python, torch, mace-torch, e3nn, pansim, ...), date,
rounds per measurement, and every benchmark's tables.

Usage (from the repository root)::

    python -m benchmarks.run_all --preset quick [--threads 1] [--only overhead batched]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: python benchmarks/run_all.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks import _common as common  # noqa: E402

BENCHMARKS = ("overhead", "calculator", "scaling", "batched")

#: hyperparameters of the smoke preset's model (the test suite's tiny model)
TINY = {
    "num_channels": 8, "max_L": 1, "max_ell": 2, "correlation": 2, "num_interactions": 2,
    "num_bessel": 6, "radial_MLP": [16, 16], "MLP_irreps": "8x0e", "avg_num_neighbors": 6.0,
    "c_max": 6.0,
}  # fmt: skip

#: preset -> benchmark -> its command-line arguments (split on spaces)
PRESETS: dict[str, dict[str, str]] = {
    "full": {name: "" for name in BENCHMARKS},
    "quick": {name: "--quick" for name in BENCHMARKS},
    "smoke": {
        "overhead": "--quick --sizes 8 --dtypes float64 --repeats 1 --max-rounds 1"
        " --variants baseline pan+pgs",
        "calculator": "--quick --sizes 8 --dtype float64 --repeats 1 --max-rounds 1"
        " --steps 2 --nve-max-atoms 8 --profile-repeats 1",
        "scaling": "--quick --sizes 8 --repeats 1 --in-process",
        "batched": "--quick --repeats 1 --workloads phonons-8",
    },
}


def arguments(preset: str, name: str, args: argparse.Namespace) -> list[str]:
    """Command line of benchmark ``name`` under ``preset`` and the shared options."""
    argv = PRESETS[preset][name].split()
    argv += ["--threads", str(args.threads), "--out-dir", str(args.out_dir)]
    hyperparameters = TINY if preset == "smoke" else args.hyperparameters
    if hyperparameters:
        argv += ["--hyperparameters", json.dumps(hyperparameters)]
    return argv


def reload(module, path: Path) -> dict[str, Any]:
    """A saved result with its Markdown redone by ``module.markdown`` (and its .md rewritten)."""
    result = json.loads(path.read_text())
    result["markdown"] = module.markdown(result)
    common.write_markdown(result, path.parent)
    return result


def readme(preset: str, results: dict[str, dict[str, Any]], duration: float) -> str:
    """The combined Markdown page: provenance, then every benchmark's tables."""
    first = next(iter(results.values()))
    m, v = first["machine"], first["versions"]
    label = {"quick": " (quick preset: small sizes, few rounds)", "smoke": " (smoke test)"}
    lines = [
        f"# pansim benchmarks{label.get(preset, '')}",
        "",
        f"Regenerate with `python -m benchmarks.run_all --preset {preset}` from the "
        "repository root (one process per benchmark step; ratios are measured side by "
        "side in one process, interleaved rounds, medians; `--readme-only` rebuilds this page "
        "from the JSON files). Models are random-initialised "
        "pansim models at `pansim.backbones.mace.DEFAULTS`"
        + (" (smoke: a tiny model)" if preset == "smoke" else "")
        + ": timing does not depend on weight values.",
        "",
        f"- date: {first['date']} (total {duration / 60:.1f} min)",
        f"- machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"torch threads {m['torch_threads']}, OMP_NUM_THREADS={m['OMP_NUM_THREADS']}, "
        f"load average at start {m['load_average_1_5_15']} (shared machine)",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "- rounds per measurement (at the largest cell; smaller cells get more, see the "
        "tables): " + ", ".join(f"{name} {r['repeats']}" for name, r in results.items()),
        "",
    ]
    for name, result in results.items():
        lines += [f"## {name}", "", result["markdown"], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Run the chosen benchmarks with one preset; write their files and README.md."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--hyperparameters", type=json.loads, default={}, help="JSON overrides")
    p.add_argument("--out-dir", type=Path, default=common.OUT_DIR)
    p.add_argument(
        "--readme-only",
        action="store_true",
        help="rebuild README.md and the .md files from the JSON files in --out-dir, run nothing",
    )
    args = p.parse_args(argv)
    started = time.perf_counter()
    results = {}
    for name in args.only:
        module = importlib.import_module(f"benchmarks.{name}")
        if args.readme_only:
            results[name] = reload(module, args.out_dir / f"{name}.json")
            continue
        print(f"== {name} ({args.preset})", file=sys.stderr)
        results[name] = module.main(arguments(args.preset, name, args))
        torch.set_num_threads(args.threads)
    if args.readme_only:
        first = next(iter(results.values()))
        args.preset = first["preset"]
        started -= sum(r["duration_s"] for r in results.values())
    args.out_dir.mkdir(parents=True, exist_ok=True)
    text = readme(args.preset, results, time.perf_counter() - started)
    (args.out_dir / "README.md").write_text(text)
    print(f"wrote {args.out_dir / 'README.md'}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
