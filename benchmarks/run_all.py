"""Run every benchmark of one preset and write results/bench/README.md (one command).

Each preset is a list of steps; a step is one benchmark run (its own Python
process, ``OMP_NUM_THREADS`` = its torch threads) writing
``<out-dir>/<preset>/<step>.json`` and ``.md``:

- ``full`` (about 1.5 hours on 2 cores; run it on a quiet machine): what the
  README's performance numbers come from.

  - ``overhead``: pan, pgs, pan+pgs over the baseline, ``DEFAULTS`` backbone,
    Si 64 / 512 / 4096 atoms, float32 and float64 (10 rounds at 512 atoms, 20
    at 64, 3 at 4096);
  - ``overhead-shipped``: the same at the shipped models' backbone size
    (configs/pretrained/base/si.yaml, 32 channels; about 4x cheaper);
  - ``calculator``: PANCalculator against mace-torch's MACECalculator (64 and
    1000 atoms, NVE 100 steps);
  - ``scaling-shipped``: time and memory per atom, shipped backbone size,
    float32 and float64, about 100 to 20000 atoms, stopping cleanly where the
    next size would not fit in memory;
  - ``batched-shipped-1thread``, ``batched-shipped-2threads``,
    ``batched-defaults-2threads``: batched against serial phonon displacements
    (8-atom cell) and elastic strains;
  - ``chunked-si``: chunked single points, 1,000 to 100,000 atoms;
  - ``torchsim``: torch-sim batched NVT against the ASE loop;
  - ``lammps``: NVE through LAMMPS ``fix external`` at 1 and 2 MPI ranks
    against the ASE loop, 512-atom Si (about 10 minutes).

- ``quick`` (minutes; numbers labelled ``quick``): ``overhead`` (64 / 512
  atoms, 3 rounds), ``calculator`` (float32, NVE 20 steps at 64 atoms),
  ``scaling-shipped`` (up to 512 atoms), ``batched-shipped-1thread`` (3 rounds),
  ``lammps`` (64 atoms, 3 steps, 1 round).
- ``smoke``: a tiny model, one tiny cell, one round (what the tests run).

``<out-dir>/README.md`` is rebuilt from the JSON files after every run (and
by ``--readme-only``, which runs nothing): a summary table ("measurement |
result | target | met?") and every table, for each step of the full preset
its ``full/`` result, else its ``quick/`` result (labelled), else "not run
yet". Every table names its preset, date, torch threads, backbone, machine
load and versions. (``smoke``: ``<out-dir>/smoke/README.md``, smoke results
only.)

Quiet check: at the start of a run, and before each step, the 1-minute load
average and the other processes busy over one second (more than 0.1 core, from
/proc) are printed and recorded in the step's JSON (``run_all``) and in
``<out-dir>/<preset>/run.json``; nothing is paused or stopped. ``--quiet-check``
only prints the check (exit status 1 if the machine is not quiet).

Usage (from the repository root)::

    python -m benchmarks.run_all --preset full [--only overhead batched-shipped-2threads]
    python -m benchmarks.run_all --preset quick [--threads 1]
    python -m benchmarks.run_all --readme-only
    python -m benchmarks.run_all --quiet-check
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: python benchmarks/run_all.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _common as common  # noqa: E402
from lab.splice import replace_between_markers  # noqa: E402

ROOT = common.ROOT
BENCHMARKS = ("overhead", "calculator", "scaling", "batched", "chunked", "torchsim", "lammps")

#: hyperparameters of the smoke preset's model (the test suite's tiny model)
TINY = {
    "num_channels": 8, "max_L": 1, "max_ell": 2, "correlation": 2, "num_interactions": 2,
    "num_bessel": 6, "radial_MLP": [16, 16], "MLP_irreps": "8x0e", "avg_num_neighbors": 6.0,
    "c_max": 6.0,
}  # fmt: skip

#: targets of issue 6 used by the summary table
OVERHEAD_TARGET = 1.05
CALCULATOR_TARGET = 1.0
#: "flat": CPU time per atom at the largest size at most this times that at ~1000 atoms
FLAT_TARGET = 1.2
SCALING_TARGET_ATOMS = 20000
BATCHED_TARGET = 2.0


@dataclasses.dataclass(frozen=True)
class Step:
    """One benchmark run of a preset: file stem, benchmark module, its arguments."""

    name: str
    benchmark: str
    args: str = ""
    #: torch threads (and OMP_NUM_THREADS); None: run_all's ``--threads``
    threads: int | None = None
    title: str = ""


_BATCHED = "--workloads phonons-8 elastic --repeats 5"
#: preset -> its steps, in the order they run (and appear in README.md)
PRESETS: dict[str, list[Step]] = {
    "full": [
        Step("overhead", "overhead", "", title="DEFAULTS backbone"),
        Step("overhead-shipped", "overhead", "--shipped",
             title="shipped backbone size"),
        Step("calculator", "calculator", "", title="PANCalculator vs mace-torch MACECalculator"),
        Step("scaling-shipped", "scaling",
             "--shipped --dtype float32 float64 --repeats 2 --max-atoms 21000",
             title="shipped backbone size"),
        Step("batched-shipped-1thread", "batched", f"--shipped {_BATCHED}", threads=1,
             title="shipped backbone size, 1 thread"),
        Step("batched-shipped-2threads", "batched", f"--shipped {_BATCHED}", threads=2,
             title="shipped backbone size, 2 threads"),
        Step("batched-defaults-2threads", "batched", _BATCHED, threads=2,
             title="DEFAULTS backbone, 2 threads"),
        Step("chunked-si", "chunked", "--dtype float32 --max-atoms-per-chunk 5000",
             title="shipped si model, max_atoms_per_chunk"),
        Step("torchsim", "torchsim", "", title="torch-sim batch vs ASE loop, shipped si model"),
        Step("lammps", "lammps", "",
             title="LAMMPS fix external, 1 and 2 MPI ranks, vs ASE loop, shipped si model"),
    ],
    "quick": [
        Step("overhead", "overhead", "--quick", title="DEFAULTS backbone"),
        Step("calculator", "calculator", "--quick",
             title="PANCalculator vs mace-torch MACECalculator"),
        Step("scaling-shipped", "scaling", "--quick --shipped --dtype float32 float64",
             title="shipped backbone size"),
        Step("batched-shipped-1thread", "batched", "--quick --shipped", threads=1,
             title="shipped backbone size, 1 thread"),
        Step("lammps", "lammps", "--quick",
             title="LAMMPS fix external, 1 and 2 MPI ranks, vs ASE loop, shipped si model"),
    ],
    "smoke": [
        Step("overhead", "overhead", "--quick --sizes 8 --dtypes float64 --repeats 1"
             " --max-rounds 1 --variants baseline pan+pgs"),
        Step("calculator", "calculator", "--quick --sizes 8 --dtype float64 --repeats 1"
             " --max-rounds 1 --steps 2 --nve-max-atoms 8 --profile-repeats 1 --control"),
        Step("scaling", "scaling", "--quick --sizes 8 --repeats 1 --in-process"),
        Step("batched", "batched", "--quick --repeats 1 --workloads phonons-8"),
        Step("chunked", "chunked", "--quick --sizes 512 --max-atoms-per-chunk 300 --r-max 2.6"),
    ],
}  # fmt: skip


def steps(preset: str, only: list[str] | None = None) -> list[Step]:
    """The steps of ``preset``, those named in ``only`` (step or benchmark names) if given."""
    chosen = PRESETS[preset]
    if only:
        chosen = [s for s in chosen if s.name in only or s.benchmark in only]
    return chosen


def step_threads(step: Step, args: argparse.Namespace) -> int:
    return step.threads if step.threads is not None else args.threads


def arguments(preset: str, step: Step, args: argparse.Namespace) -> list[str]:
    """Command line of ``step`` of ``preset`` with the shared options."""
    argv = step.args.split()
    argv += ["--threads", str(step_threads(step, args))]
    argv += ["--out-dir", str(args.out_dir / preset), "--name", step.name]
    hyperparameters = TINY if preset == "smoke" else args.hyperparameters
    if hyperparameters:
        argv += ["--hyperparameters", json.dumps(hyperparameters)]
    return argv


# -- running ------------------------------------------------------------------------------
def quiet_check(label: str) -> dict[str, Any]:
    """:func:`common.quiet_check`, printed (with a warning if the machine is not quiet)."""
    check = common.quiet_check()
    quiet = common.is_quiet(check)
    warning = "" if quiet else " -- WARNING: not a quiet machine, timings will be noisy"
    print(f"quiet check ({label}): {common.describe_quiet(check)}{warning}", file=sys.stderr)
    return check


def run_step(preset: str, step: Step, args, run_check: dict[str, Any]) -> dict[str, Any]:
    """Run one step in its own process; its status (and the result, re-saved with run data)."""
    threads = step_threads(step, args)
    command = [sys.executable, "-m", f"benchmarks.{step.benchmark}"]
    command += arguments(preset, step, args)
    print(f"== {preset}/{step.name}: {shlex.join(command[1:])}", file=sys.stderr)
    check = quiet_check(f"before {step.name}")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env)
    status = {
        "step": step.name,
        "returncode": done.returncode,
        "duration_s": round(time.perf_counter() - started, 1),
    }
    if done.returncode != 0:
        print(f"!! {preset}/{step.name} failed (exit code {done.returncode})", file=sys.stderr)
        return status
    path = args.out_dir / preset / f"{step.name}.json"
    result = json.loads(path.read_text())
    result["run_all"] = {
        "preset": preset,
        "step": step.name,
        "command": shlex.join(["python"] + command[1:]).replace(f"{ROOT}{os.sep}", ""),
        "OMP_NUM_THREADS": str(threads),
        "quiet_check_at_start": run_check,
        "quiet_check_before_step": check,
    }
    common.write_text_atomic(path, json.dumps(result, indent=1))
    status["result"] = result
    return status


# -- the page ------------------------------------------------------------------------------
def load(out_dir: Path, page: str) -> dict[str, tuple[Step, str, dict[str, Any]]]:
    """step name -> (step, preset folder it came from, result) of every result found.

    ``page`` "main": the full preset's steps, each from ``full/`` or else ``quick/``;
    "smoke": the smoke preset's steps from ``smoke/``. The Markdown of each result
    is re-rendered by its benchmark (and its .md rewritten).
    """
    order = ("smoke",) if page == "smoke" else ("full", "quick")
    found = {}
    for step in PRESETS["smoke" if page == "smoke" else "full"]:
        for preset in order:
            path = out_dir / preset / f"{step.name}.json"
            if path.exists():
                result = json.loads(path.read_text())
                module = importlib.import_module(f"benchmarks.{result['benchmark']}")
                result["markdown"] = module.markdown(result)
                common.write_markdown(result, path.parent)
                found[step.name] = (step, preset, result)
                break
    return found


def backbone_label(result: dict[str, Any]) -> str:
    """Short name of a result's backbone: DEFAULTS, shipped size or custom (channels)."""
    backbone = result.get("backbone") or common.DEFAULT_BACKBONE
    hp = result.get("hyperparameters")
    hp = hp if isinstance(hp, dict) else {}
    if backbone.endswith("pretrained/base/si.yaml"):
        return f"shipped backbone size ({hp.get('num_channels', 32)} channels)"
    if backbone == common.DEFAULT_BACKBONE and not hp:
        return "DEFAULTS backbone (64 channels)"
    return f"custom backbone ({hp.get('num_channels', 64)} channels)"


def _range(values: list[float], spec: str) -> str:
    low, high = format(min(values), spec), format(max(values), spec)
    return low if low == high else f"{low}-{high}"


def _yes(ok: bool) -> str:
    return "yes" if ok else "no"


def _where(preset: str) -> str:
    return "" if preset == "full" else f" ({preset} preset)"


def summary_overhead(result: dict[str, Any], preset: str) -> list[dict[str, str]]:
    rows = [r for r in result["rows"] if r["variant"] == "pan+pgs"]
    if not rows:
        return []
    sizes = "/".join(str(n) for n in sorted({r["atoms"] for r in rows}))
    dtypes = " and ".join(sorted({r["dtype"] for r in rows}))
    what = f"{backbone_label(result)}, Si {sizes} atoms, {dtypes}, E+F+S{_where(preset)}"
    for skip in result.get("skipped", []):
        what += f"; {skip['atoms']} atoms {skip['dtype']} not measured ({skip['why']})"
    flops = [r["flops_ratio"] for r in rows]
    wall = [r["wall_ratio"] for r in rows]
    cpu = [r["cpu_ratio"] for r in rows]
    worst = max(rows, key=lambda r: r["wall_ratio"])
    least = min(r["rounds"] for r in rows)
    user = [r["user_ratio"] for r in rows if r.get("user_ratio") is not None]
    met_wall = _yes(max(wall) <= OVERHEAD_TARGET)
    if max(wall) > OVERHEAD_TARGET:
        met_wall += f" (CPU time: {_yes(max(cpu) <= OVERHEAD_TARGET)}"
        if user:
            met_wall += f"; user CPU time: {_yes(max(user) <= OVERHEAD_TARGET)}"
        met_wall += ")"
    user_text = ""
    if user:
        sized = sorted({r["atoms"] for r in rows if r.get("user_ratio") is not None})
        user_text = (
            f"; user CPU time, without the kernel's share, {_range(user, '.3f')} at "
            f"{'/'.join(map(str, sized))} atoms"
        )
    target = f"<= {OVERHEAD_TARGET}"
    return [
        {"measurement": f"FLOPs pan+pgs / baseline, {what}", "result": _range(flops, ".4f"),
         "target": target, "met": _yes(max(flops) <= OVERHEAD_TARGET)},
        {"measurement": f"wall time pan+pgs / baseline, {what}",
         "result": f"{_range(wall, '.3f')} (largest at {worst['atoms']} atoms {worst['dtype']}; "
                   f"CPU time {_range(cpu, '.3f')}{user_text}; {least} rounds at the largest cell)",
         "target": target, "met": met_wall},
    ]  # fmt: skip


def summary_calculator(result: dict[str, Any], preset: str) -> list[dict[str, str]]:
    sizes = result["sizes"]
    sp = [s["single_point"] for s in sizes]
    nve = [s["nve"] for s in sizes if "nve" in s]

    def values(rows, key):
        return " / ".join(format(r[key], ".3f") for r in rows)

    text = (
        f"single point {' / '.join(str(r['atoms']) for r in sp)} atoms: "
        f"{values(sp, 'wall_ratio')} (CPU {values(sp, 'cpu_ratio')})"
    )
    for r in nve:
        text += (
            f"; {r['what']}, {r['atoms']} atoms: {r['wall_ratio']:.3f} (CPU {r['cpu_ratio']:.3f})"
        )
    controls = [s[k] for k in ("single_point_control", "nve_control") for s in sizes if k in s]
    if controls:
        text += "; A/A control, a second MACECalculator over the first, same rounds: " + ", ".join(
            f"{r['what'].split(' (')[0]} {r['atoms']} atoms {r['wall_ratio']:.3f}" for r in controls
        )
    wall = [r["wall_ratio"] for r in sp + nve]
    cpu = [r["cpu_ratio"] for r in sp + nve]
    met = _yes(max(wall) <= CALCULATOR_TARGET)
    if max(wall) > CALCULATOR_TARGET:
        met += f" (CPU time: {_yes(max(cpu) <= CALCULATOR_TARGET)})"
    what = f"{backbone_label(result)}, {result['dtype']}{_where(preset)}"
    return [{
        "measurement": f"time PANCalculator / mace-torch MACECalculator, same weights, {what}",
        "result": text, "target": f"<= {CALCULATOR_TARGET}", "met": met,
    }]  # fmt: skip


def _short_stop(text: str) -> str:
    text = re.sub(r" \(from [^)]*\)", "", text)
    return "every requested size completed" if text.startswith("completed") else text


def summary_scaling(result: dict[str, Any], preset: str) -> list[dict[str, str]]:
    dtypes = result["dtype"] if isinstance(result["dtype"], list) else [result["dtype"]]
    stopped = result["stopped"]
    stopped = stopped if isinstance(stopped, dict) else {dtypes[0]: stopped}
    out = []
    for dtype in dtypes:
        rows = [r for r in result["rows"] if r.get("dtype", dtype) == dtype]
        if not rows:
            continue
        largest = rows[-1]
        reference = min(rows, key=lambda r: abs(math.log(r["atoms"] / 1000)))
        what = (f"time and memory per atom, {backbone_label(result)}, {dtype}, "
                f"{rows[0]['atoms']} -> {largest['atoms']} atoms{_where(preset)}")  # fmt: skip
        text = f"largest {largest['atoms']} atoms ({_short_stop(stopped[dtype])})"
        flat, user = None, None
        if reference is not largest:
            ratio = largest["cpu_us_per_atom"] / reference["cpu_us_per_atom"]
            memory = largest["eval_kb_per_atom"] / reference["eval_kb_per_atom"]
            flat = ratio <= FLAT_TARGET
            text += (
                f"; CPU time per atom at {largest['atoms']} / at {reference['atoms']} atoms: "
                f"{ratio:.2f} ({largest['cpu_us_per_atom'] / 1e3:.2f} / "
                f"{reference['cpu_us_per_atom'] / 1e3:.2f} ms); memory per atom {memory:.2f} "
                f"({largest['eval_kb_per_atom'] / 1024:.2f} MiB/atom)"
            )
            user = None
            if largest.get("user_us_per_atom") and reference.get("user_us_per_atom"):
                user = largest["user_us_per_atom"] / reference["user_us_per_atom"]
                text += (
                    f"; user CPU time per atom (without the kernel's share) {user:.2f} "
                    f"({largest['user_us_per_atom'] / 1e3:.2f} / "
                    f"{reference['user_us_per_atom'] / 1e3:.2f} ms)"
                )
        else:
            text += "; no size above ~1000 atoms: no ratio"
        reached = largest["atoms"] >= 0.9 * SCALING_TARGET_ATOMS
        met = "flat: " + ("-" if flat is None else _yes(flat))
        if flat is False and user is not None:
            met += f" (user time: {_yes(user <= FLAT_TARGET)})"
        met += f"; ~{SCALING_TARGET_ATOMS} atoms: {_yes(reached)}"
        out.append({
            "measurement": what, "result": text,
            "target": f"flat (ratio <= {FLAT_TARGET}) up to ~{SCALING_TARGET_ATOMS} atoms",
            "met": met,
        })  # fmt: skip
    return out


def summary_batched(result: dict[str, Any], preset: str) -> list[dict[str, str]]:
    rows = {r["workload"]: r for r in result["rows"]}
    if "phonons-8" not in rows:
        return []
    r = rows["phonons-8"]
    threads = common.threads(result)
    others = [
        f"{name} {row['speedup_wall']:.2f}x" for name, row in rows.items() if name != "phonons-8"
    ]
    diff = max(row["max_abs_diff"] for row in rows.values())
    text = f"{r['speedup_wall']:.2f}x wall ({r['speedup_cpu']:.2f}x CPU)"
    text += "".join(f"; {o}" for o in others)
    text += f"; max abs diff {diff:.0e}" if diff else "; max abs diff 0"
    if threads >= 2:
        target = f">= {BATCHED_TARGET:g}x on 2 threads"
        met = _yes(r["speedup_wall"] >= BATCHED_TARGET and r["within_tolerance"])
    else:
        target, met = f"(the {BATCHED_TARGET:g}x target is for 2 threads)", "-"
    what = (f"batched / serial, 8-atom-cell phonons ({r['structures']} cells), "
            f"{backbone_label(result)}, {threads} thread(s){_where(preset)}")  # fmt: skip
    return [{"measurement": what, "result": text, "target": target, "met": met}]


SUMMARIES = {"overhead": summary_overhead, "calculator": summary_calculator,
             "scaling": summary_scaling, "batched": summary_batched}  # fmt: skip


def summary_chunked(result: dict[str, Any], preset: str) -> list[dict[str, str]]:
    return importlib.import_module("benchmarks.chunked").summary(result, preset)


def summary_torchsim(result: dict[str, Any], preset: str) -> list[dict[str, str]]:
    return importlib.import_module("benchmarks.torchsim").summary(result, preset)


def summary_lammps(result: dict[str, Any], preset: str) -> list[dict[str, str]]:
    return importlib.import_module("benchmarks.lammps").summary(result, preset)


SUMMARIES["chunked"] = summary_chunked
SUMMARIES["torchsim"] = summary_torchsim
SUMMARIES["lammps"] = summary_lammps
SUMMARY_COLUMNS = [("measurement", "measurement", ""), ("result", "result", ""),
                   ("target", "target", ""), ("met", "met?", "")]  # fmt: skip


def summary(found: dict[str, tuple[Step, str, dict[str, Any]]]) -> str:
    """The "measurement | result | target | met?" table of the results found."""
    rows = []
    for _step, preset, result in found.values():
        rows += SUMMARIES[result["benchmark"]](result, preset)
    return common.table(rows, SUMMARY_COLUMNS)


def provenance(step: Step, preset: str, result: dict[str, Any], versions: str | None) -> str:
    """One paragraph: where a table comes from (preset, date, threads, load, versions)."""
    m = result["machine"]
    text = (
        f"*{preset} preset*, {result['date']}, {result.get('duration_s', 0) / 60:.1f} min; "
        f"{common.threads(result)} torch thread(s), OMP_NUM_THREADS={m['OMP_NUM_THREADS']}; "
        f"{backbone_label(result)}. "
    )
    run = result.get("run_all")
    if run:
        text += f"Before the step: {common.describe_quiet(run['quiet_check_before_step'])}. "
    else:
        text += "Other busy processes not recorded. "
    text += f"Load average (1, 5, 15 min) when it finished: {m['load_average_1_5_15']}."
    if result.get("provenance"):
        p = result["provenance"]
        text += f" Provenance: {p.get('note', '')} Command: `{p.get('command', '?')}`."
    elif run:
        text += f" Command: `{run['command']}`."
    if versions:
        text += f" Versions: {versions}."
    return text


def _versions(result: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in result["versions"].items())


def readme(out_dir: Path, page: str = "main") -> str:
    """The Markdown page from the JSON files in ``out_dir``: summary, then every table."""
    found = load(out_dir, page)
    canonical = PRESETS["smoke" if page == "smoke" else "full"]
    versions = {_versions(r) for _, _, r in found.values()}
    machines = {
        f"{r['machine']['cpu']}, {r['machine']['cores']} cores "
        f"({r['machine']['usable_cores']} usable), {r['machine']['platform']}"
        for _, _, r in found.values()
    }
    title = "# pansim benchmarks" + (" (smoke test)" if page == "smoke" else "")
    lines = [
        title,
        "",
        "Regenerate every table: `python -m benchmarks.run_all --preset full` from the "
        "repository root (about 1.5 hours on 2 cores; run it on a quiet machine: it prints and "
        "records the load average and the other busy processes at the start and before each "
        "step, and `--quiet-check` does only that). `--preset quick` (minutes: smaller cells, "
        "fewer rounds) fills in, labelled, the tables the full preset has not produced yet; "
        "`--readme-only` rebuilds this page from the JSON files (`full/`, `quick/`). Each step "
        "runs in its own process; ratios are measured side by side in one process, interleaved "
        "rounds, medians. Models are random-initialised pansim models: timing does not depend "
        f"on weight values. Shipped backbone size: {backbone_sizes()}.",
        "",
        "- machine: " + "; ".join(sorted(machines)) if machines else "- machine: no results yet",
    ]
    if len(versions) == 1:
        lines.append(f"- versions (every table): {next(iter(versions))}")
    for preset in ("smoke",) if page == "smoke" else ("full", "quick"):
        manifest = out_dir / preset / "run.json"
        if manifest.exists():
            run = json.loads(manifest.read_text())
            failed = [s["step"] for s in run["steps"] if s["returncode"] != 0]
            lines.append(
                f"- last `--preset {preset}` run: {run['date']}, steps "
                + ", ".join(s["step"] for s in run["steps"])
                + (f"; FAILED: {', '.join(failed)}" if failed else "")
                + f"; at its start: {common.describe_quiet(run['quiet_check_at_start'])}"
            )
    lines += ["", "## Summary", ""]
    lines += [summary(found) if found else "No results yet.", ""]
    lines += [
        f"Targets (issue 6): pan+pgs / baseline FLOPs and wall time <= {OVERHEAD_TARGET}; "
        f"PANCalculator / MACECalculator time <= {CALCULATOR_TARGET}; time per atom flat "
        f"(here: CPU time per atom at the largest cell <= {FLAT_TARGET}x that at ~1000 "
        f"atoms) up to ~{SCALING_TARGET_ATOMS} atoms; batched 8-atom-cell phonons >= "
        f"{BATCHED_TARGET:g}x faster than serial on 2 threads. CPU time is process time, "
        "the steadier measure on a shared machine.",
        "",
    ]
    for step in canonical:
        heading = f"## {step.name}" + (f" ({step.title})" if step.title else "")
        if step.name not in found:
            preset = "smoke" if page == "smoke" else "full"
            command = f"python -m benchmarks.run_all --preset {preset} --only {step.name}"
            lines += [heading, "", f"Not run yet: `{command}`.", ""]
            continue
        _, preset, result = found[step.name]
        own = _versions(result) if len(versions) > 1 else None
        lines += [heading, "", provenance(step, preset, result, own), "", result["markdown"], ""]
    return "\n".join(lines)


def backbone_sizes() -> str:
    """The two backbone sizes the tables use, read from their sources."""
    from pansim.backbones.mace import DEFAULTS

    def size(h: dict[str, Any]) -> str:
        return (
            f"{h['num_channels']} channels, max_L {h['max_L']}, max_ell {h['max_ell']}, "
            f"correlation {h['correlation']}, radial MLP {list(h['radial_MLP'])}"
        )

    shipped = {**DEFAULTS, **common.config_hyperparameters(common.SHIPPED_CONFIG)}
    return (
        f"{common.SHIPPED_CONFIG.relative_to(common.ROOT)} ({size(shipped)}); "
        f"DEFAULTS: pansim.backbones.mace.DEFAULTS ({size(DEFAULTS)})"
    )


#: the summary table of docs/benchmarks.md sits between these lines
README_MARKERS = ("<!-- benchmarks summary: start", "<!-- benchmarks summary: end -->")


def update_project_readme(
    out_dir: Path, readme_path: Path = common.ROOT / "docs" / "benchmarks.md"
) -> bool:
    """Replace the summary table of ``readme_path`` (between :data:`README_MARKERS`).

    Only for the project's own results folder: runs into other folders (tests, trials)
    leave the README alone. Returns whether it was rewritten.
    """
    if Path(out_dir).resolve() != common.OUT_DIR.resolve():
        return False
    start, end = README_MARKERS
    found = load(out_dir, "main")
    machines = sorted(
        {f"{r['machine']['cpu']}, {r['machine']['cores']} cores" for _, _, r in found.values()}
    )
    versions = sorted({_versions(r) for _, _, r in found.values()})
    block = (
        f"{start} (written by `python -m benchmarks.run_all`) -->\n"
        f"Machine: {'; '.join(machines)}; 1 torch thread unless the row says otherwise. "
        f"Versions: {'; '.join(versions)}.\n\n"
        f"{summary(found) if found else 'No results yet.'}\n{end}"
    )
    if not replace_between_markers(readme_path, start, end, block):
        return False
    print(f"wrote the summary table of {readme_path}", file=sys.stderr)
    return True


def write_readme(out_dir: Path, page: str = "main") -> Path:
    path = out_dir / ("smoke" if page == "smoke" else "") / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    common.write_text_atomic(path, readme(out_dir, page))
    print(f"wrote {path}", file=sys.stderr)
    if page == "main":
        update_project_readme(out_dir)
    return path


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Run the chosen steps of one preset; write their files and README.md; the results."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    names = sorted({s.name for v in PRESETS.values() for s in v} | set(BENCHMARKS))
    p.add_argument("--only", nargs="+", choices=names, default=None,
                   help="steps (or benchmarks: all their steps) to run")  # fmt: skip
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of the steps that do not fix their own")  # fmt: skip
    p.add_argument("--hyperparameters", type=json.loads, default={}, help="JSON overrides")
    p.add_argument("--out-dir", type=Path, default=common.OUT_DIR)
    p.add_argument(
        "--readme-only",
        action="store_true",
        help="rebuild README.md and the .md files from the JSON files in --out-dir, run nothing",
    )
    p.add_argument(
        "--quiet-check",
        action="store_true",
        help="print the load average and other busy processes, run nothing (exit 1 if busy)",
    )
    args = p.parse_args(argv)
    page = "smoke" if args.preset == "smoke" else "main"
    if args.quiet_check:
        check = quiet_check("now")
        raise SystemExit(0 if common.is_quiet(check) else 1)
    if args.readme_only:
        write_readme(args.out_dir, page)
        return {name: result for name, (_, _, result) in load(args.out_dir, page).items()}
    chosen = steps(args.preset, args.only)
    run_check = quiet_check("start")
    statuses = [run_step(args.preset, step, args, run_check) for step in chosen]
    manifest = {
        "preset": args.preset,
        "date": run_check["date"],
        "command": shlex.join(["python", "-m", "benchmarks.run_all"] + (argv or sys.argv[1:])),
        "quiet_check_at_start": run_check,
        "steps": [{k: v for k, v in s.items() if k != "result"} for s in statuses],
    }
    (args.out_dir / args.preset).mkdir(parents=True, exist_ok=True)
    common.write_text_atomic(
        args.out_dir / args.preset / "run.json", json.dumps(manifest, indent=1)
    )
    write_readme(args.out_dir, page)
    failed = [s["step"] for s in statuses if s["returncode"] != 0]
    if failed:
        print(f"failed steps: {', '.join(failed)}", file=sys.stderr)
    return {s["step"]: s.get("result") for s in statuses}


if __name__ == "__main__":
    results = main()
    sys.exit(1 if any(r is None for r in results.values()) else 0)
