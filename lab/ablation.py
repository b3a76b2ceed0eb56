"""The ablation table: test errors of every variant over seeds, relative to the baseline.

For each system and variant: mean and standard deviation over seeds of the
test-set MAE of energy per atom (meV/atom), forces (meV/A) and stress (GPa),
the change of the mean relative to the baseline, and measured inference cost
ratios (FLOPs counted with ``torch.utils.flop_counter``, wall time) versus
the baseline of the same system.
"""

from __future__ import annotations

import json
import os
import statistics as stats
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lab.plan import Job
from lab.timing import interleaved
from pansim.training.data import batch_to_tensors
from pansim.training.evaluate import forward, metrics, predict, wants_stress
from pansim.training.trainer import BEST_MODEL

QUANTITIES = (("energy_per_atom", "meV/atom"), ("forces", "meV/A"), ("stress", "GPa"))
PUBLISHED = "forces -22 to -27%, energies -19 to -22%, stress -27 to -28%"
#: published relative changes of PAN+PGS over MACE (percent), per quantity
PUBLISHED_RANGES = {
    "energy_per_atom": (-22.0, -19.0),
    "forces": (-27.0, -22.0),
    "stress": (-28.0, -27.0),
}


def load_run(job: Job):
    """The best model of a finished job, its config and summary."""
    from pansim.model_io import load_model

    summary = json.loads((job.out_dir / "summary.json").read_text())
    return load_model(job.out_dir / BEST_MODEL), summary


def flops(model: torch.nn.Module, batch: dict, stress: bool) -> float:
    """FLOPs of one energy+forces(+stress) call, as ``FlopCounterMode`` counts them.

    Only matrix products and convolutions are counted (forward and the force
    backward pass); elementwise work is not.
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        forward(model, batch, training=False, stress=stress)
    return float(counter.get_total_flops())


def costs(models: dict, samples, repeats: int = 30, warmup: int = 3) -> dict:
    """FLOPs and median CPU time (s) of each model on one batch of ``samples``.

    Timed with :func:`lab.timing.interleaved` (CPU time, medians). Each entry also
    keeps when the timing started (``timed_at``, UTC) and the machine's 1-minute load
    average then (``load_1min``), so a table can say under what load it was timed.
    """
    when = {
        "timed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_1min": os.getloadavg()[0],
    }
    stress = wants_stress(samples)
    batches = {k: batch_to_tensors(samples, _dtype(m), "cpu") for k, m in models.items()}
    calls = {
        k: (lambda m=m, b=batches[k]: forward(m, b, training=False, stress=stress))
        for k, m in models.items()
    }
    times = {k: s["cpu"] for k, s in interleaved(calls, repeats, warmup).items()}
    return {
        k: {"flops": flops(m, batches[k], stress), "seconds": stats.median(times[k]), **when}
        for k, m in models.items()
    }


def _dtype(model: torch.nn.Module) -> torch.dtype:
    return next(p.dtype for p in model.parameters())


def evaluate_jobs(jobs: Sequence[Job], samples, cost_samples: int = 8) -> list[dict[str, Any]]:
    """Test metrics of each finished job and inference costs timed across all of them."""
    loaded = {job: load_run(job) for job in jobs}
    measured = costs({job: model for job, (model, _) in loaded.items()}, samples[:cost_samples])
    return [
        {
            "system": job.system,
            "variant": job.variant,
            "seed": job.seed,
            "epochs": summary["epochs"],
            "train_seconds": summary.get("train_seconds"),
            "metrics": metrics(samples, predict(model, samples)),
            **measured[job],
        }
        for job, (model, summary) in loaded.items()
    ]


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return stats.fmean(values), (stats.stdev(values) if len(values) > 1 else None)


def aggregate(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (system, variant): mean/std over seeds, changes vs baseline.

    Error changes compare with the baseline of the same system *on the same seeds* (while
    some seeds of a variant are still missing, its row is not set against a baseline mean
    over other seeds); without a shared seed they are ``None``. Cost ratios (FLOPs, time)
    compare with the mean over *every* baseline run of the system: the seeds share one
    architecture, so their timings are repeated measurements of the same cost, and one
    seed's timing alone carries that run's noise.
    """
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["system"], row["variant"])].append(row)
    table = []
    for (system, variant), runs in groups.items():
        entry = _summarise(system, variant, runs)
        seeds = set(entry["seeds"])
        baselines = groups.get((system, "baseline"), [])
        shared = [r for r in baselines if r["seed"] in seeds]
        _relative(entry, _summarise(system, "baseline", shared) if shared else None)
        _cost_ratios(entry, _summarise(system, "baseline", baselines) if baselines else None)
        table.append(entry)
    return table


def _summarise(system: str, variant: str, runs: list[dict]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "system": system,
        "variant": variant,
        "seeds": sorted(r["seed"] for r in runs),
        "epochs": sorted({r["epochs"] for r in runs}),
        "flops": stats.fmean(r["flops"] for r in runs),
        "seconds": stats.fmean(r["seconds"] for r in runs),
    }
    for key, _ in QUANTITIES:
        mean, std = _mean_std([r["metrics"][key]["mae"] for r in runs])
        entry[key] = {"mean": mean, "std": std}
    return entry


def _relative(entry: dict[str, Any], base: dict[str, Any] | None) -> None:
    for key, _ in QUANTITIES:
        ref = None if base is None else base[key]["mean"]
        mean = entry[key]["mean"]
        entry[key]["change_pct"] = None if not ref or mean is None else 100 * (mean / ref - 1)


def _cost_ratios(entry: dict[str, Any], base: dict[str, Any] | None) -> None:
    entry["flops_ratio"] = None if base is None else entry["flops"] / base["flops"]
    entry["time_ratio"] = None if base is None else entry["seconds"] / base["seconds"]


def _cell(value: dict[str, Any]) -> str:
    if value["mean"] is None:
        return "-"
    change = value.get("change_pct")
    delta = f" ({change:+.1f}%)" if change is not None else ""
    spread = f" ± {value['std']:.2g}" if value.get("std") is not None else " (1 seed)"
    return f"{value['mean']:.3g}{spread}{delta}"


def to_markdown(table: Sequence[dict[str, Any]], note: str = "") -> str:
    """The table as Markdown, with a note on seeds, epochs and the published numbers."""
    head = ["system", "variant", "seeds", "epochs"]
    head += [f"{key.replace('_', ' ')} MAE ({unit})" for key, unit in QUANTITIES]
    head += ["FLOPs ratio", "time ratio"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in table:
        cells = [e["system"], e["variant"], str(len(e["seeds"])), "/".join(map(str, e["epochs"]))]
        cells += [_cell(e[key]) for key, _ in QUANTITIES]
        cells += [_ratio(e["flops_ratio"]), _ratio(e["time_ratio"])]
        lines.append("| " + " | ".join(cells) + " |")
    footer = [
        "",
        "Mean ± standard deviation over seeds of test-set MAE; in brackets the change of the "
        "mean versus `baseline` of the same system on the same seeds. FLOPs: "
        "`torch.utils.flop_counter` (matrix products, energy + forces); time: median CPU time "
        "of the same call (30 interleaved rounds, process time), this machine. Both ratios "
        "are over the mean of all baseline seeds of the system (one architecture).",
        f"Published reductions for PAN+PGS over MACE: {PUBLISHED}.",
    ]
    footer += verdicts(table)
    if note:
        footer.append(note)
    return "\n".join(lines + footer) + "\n"


def verdicts(table: Sequence[dict[str, Any]]) -> list[str]:
    """One line per system: where ``pan+pgs`` lands against the published ranges."""
    out = []
    for entry in table:
        if entry["variant"] != "pan+pgs":
            continue
        parts = []
        for key, (low, high) in PUBLISHED_RANGES.items():
            change = entry[key].get("change_pct")
            if change is None:
                continue
            if low <= change <= high:
                where = "within"
            elif change < low:
                where = "beyond"
            else:  # a rise is not a smaller reduction: say which way it went
                where = "short of" if change <= 0 else "worse than the baseline; published"
            parts.append(f"{key.replace('_', ' ')} {change:+.1f}% ({where} {low:g} to {high:g}%)")
        if parts:
            out.append(f"- {entry['system']}, pan+pgs vs baseline: " + "; ".join(parts) + ".")
    return out


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def write(table, rows, folder: str | Path, note: str = "") -> tuple[Path, Path]:
    """Write ``ablation.md`` and ``ablation.json`` (per-run rows included)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    md, js = folder / "ablation.md", folder / "ablation.json"
    from pansim.files import write_text_atomic

    write_text_atomic(md, to_markdown(table, note))
    write_text_atomic(js, json.dumps({"note": note, "table": table, "runs": list(rows)}, indent=1))
    return md, js
