"""Shared pieces of the benchmarks: Si cells, models, interleaved timing, machine, output.

Every benchmark measures ratios side by side in one process: the things it
compares are called in rounds, in a shuffled order every round, so that all of
them see the same machine load, and medians of the rounds are reported. Both
the wall time and the CPU time of the process (``time.process_time``, all
threads) are kept; on a shared machine the CPU time is the steadier of the two.

Models are random-initialised pansim models (``pansim.backbones.mace.DEFAULTS``
unless ``--hyperparameters`` overrides them): timing does not depend on the
weights' values, only on the architecture.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk

from lab.timing import interleaved, shuffled_rounds  # noqa: F401 (the benchmarks' timer)
from pansim.files import write_json_atomic, write_text_atomic
from pansim.precision import DTYPES
from pansim.provenance import versions  # noqa: F401 - one definition, re-exported

#: cutoff of every benchmark model (A)
R_MAX = 5.0
#: Si lattice constant (docs/spec.md §2.1), A
SI_A = 5.47
#: where results go unless ``--out-dir`` says otherwise
OUT_DIR = Path(__file__).resolve().parent.parent / "results" / "bench"

ROOT = Path(__file__).resolve().parent.parent
#: the training config whose ``hyperparameters`` size the shipped pretrained models
SHIPPED_CONFIG = ROOT / "configs" / "pretrained" / "base" / "si.yaml"
#: label of the default backbone (no config, no overrides)
DEFAULT_BACKBONE = "pansim.backbones.mace.DEFAULTS"


# -- structures and models ------------------------------------------------------------
def cubic_repeats(n_atoms: int) -> tuple[int, int, int]:
    """Near-cubic repeats of the 8-atom cubic Si cell with an atom count nearest ``n_atoms``."""
    best: tuple[int, int, int] = (1, 1, 1)
    for k in range(1, 64):
        for extra in range(4):
            reps = (k,) * (3 - extra) + (k + 1,) * extra
            if abs(8 * np.prod(reps) - n_atoms) < abs(8 * np.prod(best) - n_atoms):
                best = reps
    return best


def si_cell(n_atoms: int, rattle: float = 0.02, seed: int = 0) -> Atoms:
    """Diamond Si (a = 5.47 A) with about ``n_atoms`` atoms, rattled by ``rattle`` A."""
    atoms = bulk("Si", "diamond", a=SI_A, cubic=True).repeat(cubic_repeats(n_atoms))
    if rattle:
        atoms.rattle(rattle, seed=seed)
    return atoms


def build(
    variant: str = "baseline",
    dtype: str = "float64",
    hyperparameters: dict[str, Any] | None = None,
    seed: int = 0,
) -> torch.nn.Module:
    """A random-initialised Si pansim model (eval mode) in ``dtype`` (default dtype restored)."""
    import pansim

    previous = torch.get_default_dtype()
    torch.set_default_dtype(DTYPES[dtype])
    try:
        model = pansim.build_model(
            variant=variant, elements=["Si"], r_max=R_MAX, seed=seed, **(hyperparameters or {})
        )
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


# -- timing --------------------------------------------------------------------------
#: profiler events of the autograd engine (the backward pass) start with this
BACKWARD = "autograd::engine::evaluate_function"


def in_backward(event: Any) -> bool:
    """Whether a profiler event runs inside the autograd engine (itself or an ancestor)."""
    while event is not None:
        if event.name.startswith(BACKWARD):
            return True
        event = event.cpu_parent
    return False


def op_times(call: Callable[[], Any], calls: int = 1) -> dict[str, float]:
    """Self CPU time (us) per call of every op of ``call()``, run ``calls`` times profiled.

    Keys are ``"forward <op>"`` or ``"backward <op>"`` (see :func:`in_backward`).
    """
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            call()
    per_op: dict[str, float] = {}
    for event in prof.events():
        key = f"{'backward' if in_backward(event) else 'forward'} {event.name}"
        per_op[key] = per_op.get(key, 0.0) + event.self_cpu_time_total / calls
    return per_op


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    """``{"wall": median, "cpu": median}`` of one entry of :func:`interleaved`."""
    return {key: statistics.median(values) for key, values in samples.items()}


def rounds(
    repeats: int, n_atoms: int, reference: int, cap: int = 20, floor: int | None = None
) -> int:
    """``repeats`` rounds at ``reference`` atoms, more (at most ``cap``) for smaller cells.

    Larger cells get ``repeats`` rounds too, unless ``floor`` is given: then they get
    proportionally fewer, down to ``floor``.
    """
    least = repeats if floor is None else min(floor, repeats)
    return min(max(cap, repeats), max(least, -(-repeats * reference // max(n_atoms, 1))))


def memory_mb() -> dict[str, float]:
    """Resident memory of this process now (``rss``) and its peak (``peak``), MiB.

    From /proc/self/status (VmRSS, VmHWM): unlike ``getrusage``'s ``ru_maxrss``,
    which after ``fork`` + ``exec`` still carries the parent's peak, VmHWM
    belongs to this process's own memory map. Elsewhere ``ru_maxrss`` is used
    for both.
    """
    try:
        fields = {}
        with open("/proc/self/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0]) / 1024.0
        return {"rss": fields["VmRSS"], "peak": fields["VmHWM"]}
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        return {"rss": peak, "peak": peak}


def available_mb() -> float | None:
    """Memory available now (MiB; psutil or MemAvailable of /proc/meminfo), None if unknown."""
    from pansim.chunking import available_memory

    available = available_memory("cpu")
    return None if available is None else available / 2**20


def predicted_peak_mb(previous: dict[str, Any], n_atoms: int) -> float:
    """Peak RSS of a process at ``n_atoms`` from the previous size: set-up + per-atom memory.

    ``previous`` holds ``atoms``, ``rss_setup_mb`` and ``rss_peak_mb`` of the smaller
    size. The per-atom memory is the whole process's peak over every call (not only the
    first evaluation's: later calls can grow the heap further) less the set-up RSS.
    """
    per_atom = (previous["rss_peak_mb"] - previous["rss_setup_mb"]) / previous["atoms"]
    return previous["rss_setup_mb"] + per_atom * n_atoms


def too_big(previous: dict[str, Any] | None, n_atoms: int, fraction: float) -> str | None:
    """Why the Si cell of about ``n_atoms`` should not be started (estimate does not fit)."""
    free = available_mb()
    if previous is None or free is None:
        return None
    atoms = len(si_cell(n_atoms, rattle=0.0))
    need = predicted_peak_mb(previous, atoms)
    if need <= fraction * free:
        return None
    return (
        f"stopped before {atoms} atoms: estimated peak {need / 1024:.1f} GiB (from the "
        f"peak RSS at {previous['atoms']} atoms) > "
        f"{fraction:.0%} of the {free / 1024:.1f} GiB available"
    )


def reset_peak_memory() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux ``clear_refs`` 5); success."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


# -- machine and versions ---------------------------------------------------------------
def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """CPU, cores, torch threads and load at the time of the call."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "load_average_1_5_15": [round(x, 2) for x in load],
        "platform": platform.platform(),
    }


def _proc_cpu_ticks() -> dict[int, tuple[str, int]]:
    """pid -> (command name, user + system clock ticks so far) of every process in /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                text = handle.read()
        except OSError:
            continue
        name = text[text.find("(") + 1 : text.rfind(")")]
        fields = text[text.rfind(")") + 2 :].split()
        try:
            out[int(entry)] = (name, int(fields[11]) + int(fields[12]))
        except (IndexError, ValueError):
            continue
    return out


def _command(pid: int, name: str, width: int = 60) -> str:
    """A process's command line, shortened (its name where the command line is unreadable)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().split(b"\0")
    except OSError:
        return name
    words = [w.decode(errors="replace") for w in words if w]
    if not words:
        return name
    text = " ".join([os.path.basename(words[0])] + words[1:])
    return text if len(text) <= width else text[: width - 3] + "..."


def quiet_check(interval: float = 1.0, threshold: float = 0.1) -> dict[str, Any]:
    """How quiet the machine is now: 1-min load average and the other busy processes.

    A process is busy if it used more than ``threshold`` of a core over the
    ``interval`` seconds sampled (user + system time from /proc/<pid>/stat; this
    process is not counted). Nothing is paused or stopped. Without /proc only the
    load average is reported (``busy_processes`` is None).
    """
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    out: dict[str, Any] = {
        "date": now(),
        "load_1min": round(load[0], 2),
        "cores": os.cpu_count(),
        "busy_processes": None,
        "busy_cores": None,
        "busy": [],
        "threshold_cores": threshold,
        "interval_s": interval,
    }
    if not os.path.isdir("/proc"):
        return out
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    before = _proc_cpu_ticks()
    time.sleep(interval)
    after = _proc_cpu_ticks()
    busy = []
    for pid, (name, ticks) in after.items():
        if pid == os.getpid() or pid not in before or before[pid][0] != name:
            continue
        cores = (ticks - before[pid][1]) / tick / interval
        if cores > threshold:
            busy.append({"pid": pid, "name": _command(pid, name), "cores": round(cores, 2)})
    busy.sort(key=lambda b: -b["cores"])
    out.update(
        busy_processes=len(busy), busy_cores=round(sum(b["cores"] for b in busy), 2), busy=busy
    )
    return out


def describe_quiet(check: dict[str, Any]) -> str:
    """One line: load average and other busy processes of a :func:`quiet_check`."""
    line = f"1-min load average {check['load_1min']} on {check['cores']} cores"
    if check.get("busy_processes") is None:
        return line + ", other busy processes not known"
    names = ", ".join(f"{b['name']} {b['cores']:.1f}" for b in check["busy"][:5])
    return (
        f"{line}, {check['busy_processes']} other busy process(es) using "
        f"{check['busy_cores']:.1f} core(s)" + (f" ({names})" if names else "")
    )


def is_quiet(check: dict[str, Any]) -> bool:
    """No other busy process (where known) and a 1-min load average below 1."""
    return not check.get("busy_processes") and check["load_1min"] < 1.0


def now() -> str:
    """UTC time, ISO 8601, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


# -- command line and output -----------------------------------------------------------------
def parser(doc: str) -> argparse.ArgumentParser:
    """Arguments every benchmark takes."""
    p = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats")
    p.add_argument("--repeats", type=int, default=None, help="interleaved rounds")
    p.add_argument(
        "--max-rounds", type=int, default=20, help="cap on the extra rounds of small cells"
    )
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument(
        "--hyperparameters", type=json.loads, default={}, help="JSON overrides of DEFAULTS"
    )
    p.add_argument("--config", type=Path, default=None, help="backbone of this training config")
    p.add_argument(
        "--shipped",
        action="store_true",
        help=f"backbone of the shipped models ({SHIPPED_CONFIG.name})",
    )
    p.add_argument("--out-dir", type=Path, default=OUT_DIR, help="where JSON and .md go")
    p.add_argument("--name", default=None, help="stem of the JSON and .md files")
    p.add_argument("--no-write", action="store_true", help="print only")
    return p


def config_hyperparameters(path: Path) -> dict[str, Any]:
    """The ``hyperparameters`` mapping of a pansim training config (YAML)."""
    import yaml

    with open(path) as handle:
        return dict(yaml.safe_load(handle).get("hyperparameters") or {})


def resolve_backbone(args: argparse.Namespace) -> str:
    """Merge ``--shipped`` / ``--config`` into ``args.hyperparameters``; the backbone's label.

    The label is the config's path (relative to the repository) or
    :data:`DEFAULT_BACKBONE`; ``--hyperparameters`` overrides the config's values.
    """
    config = SHIPPED_CONFIG if args.shipped and args.config is None else args.config
    if config is None:
        return DEFAULT_BACKBONE
    config = Path(config).resolve()
    args.hyperparameters = {**config_hyperparameters(config), **args.hyperparameters}
    return str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config)


def header(name: str, args: argparse.Namespace, started: float) -> dict[str, Any]:
    """Common fields of every result: preset, machine, versions, date, duration."""
    return {
        "benchmark": name,
        "preset": "quick" if args.quick else "full",
        "date": now(),
        "duration_s": round(time.perf_counter() - started, 1),
        "repeats": args.repeats,
        "max_rounds": args.max_rounds,
        "threads": args.threads,
        "hyperparameters": args.hyperparameters or DEFAULT_BACKBONE,
        "backbone": getattr(args, "backbone", None) or DEFAULT_BACKBONE,
        "models": "random-initialised pansim models (timing does not depend on weight values)",
        "machine": machine(),
        "versions": versions(),
    }


def threads(result: dict[str, Any]) -> int:
    """Torch threads a result was measured with."""
    return int(result.get("threads", result["machine"]["torch_threads"]))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """A Markdown table of ``rows``; ``columns`` are ``(key, heading, format spec)``."""
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |"]
    lines.append("|" + "|".join(" ---: " if f else " --- " for _, _, f in columns) + "|")
    for row in rows:
        cells = []
        for key, _, spec in columns:
            value = row.get(key)
            cells.append("" if value is None else format(value, spec) if spec else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def with_note(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]],
              note: str) -> str:  # fmt: skip
    """:func:`table` of ``rows`` followed by a paragraph ``note``."""
    return table(rows, columns) + "\n\n" + note


def finish(
    benchmark: str,
    args: argparse.Namespace,
    started: float,
    markdown: Callable[[dict[str, Any]], str],
    **fields: Any,
) -> dict[str, Any]:
    """The result of ``benchmark``: :func:`header` + ``fields`` + its Markdown, written.

    ``markdown(result)`` renders the tables (also used to re-render saved JSON);
    :func:`write` prints them and writes the files. Returns the result.
    """
    result = header(benchmark, args, started)
    result.update(fields)
    result["name"] = getattr(args, "name", None) or result.get("name") or benchmark
    result["markdown"] = markdown(result)
    write(result, args)
    return result


def write(result: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the Markdown; write ``<out-dir>/<name>.json`` and ``.md`` unless ``--no-write``.

    ``<name>`` is the result's ``name`` if it has one (several runs of one
    benchmark side by side), else the benchmark's.
    """
    print(result["markdown"])
    if args.no_write:
        return
    args.out_dir.mkdir(parents=True, exist_ok=True)
    name = result.get("name") or result["benchmark"]
    write_json_atomic(args.out_dir / f"{name}.json", result, indent=1, default=_jsonable)
    write_markdown(result, args.out_dir)
    print(f"wrote {args.out_dir / name}.json and .md", file=sys.stderr)


def write_markdown(result: dict[str, Any], out_dir: Path) -> None:
    """``<out_dir>/<name>.md``: a heading (with the preset if quick) and the tables."""
    name = result.get("name") or result["benchmark"]
    label = f" ({result['preset']} preset)" if result["preset"] == "quick" else ""
    text = f"# {name}{label}\n\n{result['markdown']}\n"
    write_text_atomic(Path(out_dir) / f"{name}.md", text)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, (np.ndarray,)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")
