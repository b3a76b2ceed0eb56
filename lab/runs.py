"""Run folders of the training plan, read back: history, best epoch, test errors.

A run folder ``RUNS/<system>/<variant>-seed<k>/`` holds ``metrics.json`` (one row per
epoch, written as the run goes) and, once the run has finished, ``summary.json``
(stop reason, test errors measured once on the best-validation weights). Used by
``scripts/converged_report.py`` (stopping table, learning curves) and
:mod:`lab.ship` (the shipping rule).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_NAME = re.compile(r"^(?P<variant>.+)-seed(?P<seed>\d+)$")
VARIANT_ORDER = ("baseline", "pan", "pgs", "pan+pgs")
#: validation columns reported (metrics.json keys) and their units
COLUMNS = {
    "valid_energy_mae": "meV/atom",
    "valid_forces_mae": "meV/A",
    "valid_stress_mae": "GPa",
}


def read_run(path: Path) -> dict | None:
    """One run folder as a dict, or None when it has no epoch yet."""
    match = RUN_NAME.match(path.name)
    metrics = path / "metrics.json"
    if match is None or not metrics.exists():
        return None
    history = json.loads(metrics.read_text())
    if not history:
        return None
    summary_path = path / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    best = min(history, key=lambda row: row["valid_loss"])
    run = {
        "system": path.parent.name,
        "variant": match["variant"],
        "seed": int(match["seed"]),
        "path": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
        "status": "finished" if summary else "running",
        "epochs": len(history),
        "best_epoch": best["epoch"],
        "best_valid_loss": best["valid_loss"],
        "best_valid": {key: best.get(key) for key in COLUMNS},
        "final_lr": history[-1]["lr"],
        "late_change": late_change(history),
        "stop_reason": summary.get("stop_reason") if summary else None,
        "test": summary.get("test") if summary else None,
        "train_seconds": summary.get("train_seconds") if summary else None,
        "history": history,
    }
    return run


def late_change(history: list[dict], window: int = 20) -> float | None:
    """Relative change of the best validation loss: last ``window`` epochs vs the ones before.

    -0.10 means the last window still lowered the best validation loss by 10 %: the run
    had not converged. None for runs shorter than two windows.
    """
    if len(history) < 2 * window:
        return None
    before = min(row["valid_loss"] for row in history[-2 * window : -window])
    last = min(row["valid_loss"] for row in history[-window:])
    return (last - before) / before


def collect(runs_dir: Path) -> dict[str, list[dict]]:
    """Runs by system (variant order, then seed)."""
    systems: dict[str, list[dict]] = {}
    for path in sorted(runs_dir.glob("*/*-seed*")):
        run = read_run(path)
        if run is not None:
            systems.setdefault(run["system"], []).append(run)
    rank = {v: i for i, v in enumerate(VARIANT_ORDER)}
    for runs in systems.values():
        runs.sort(key=lambda r: (rank.get(r["variant"], 9), r["variant"], r["seed"]))
    return systems


def compute_account(runs: list[dict], planned: list[tuple[str, str, int]]) -> dict:
    """Core-hours spent by the finished runs and an estimate of what the plan still needs.

    ``planned`` lists (system, variant, seed) of every job of the plan. The estimate
    assumes a job not yet finished stops at the mean epoch count of the finished runs of
    its variant (of all finished runs when its variant has none) and costs their mean
    seconds per epoch; a running job is charged the epochs it still lacks. Every crystal
    and molecule dataset of the plan has 240 training structures of 7-9 atoms, so one
    per-epoch cost serves them all. Times are wall-clock seconds of one-thread jobs on
    the machine that ran them (shared with other jobs), i.e. core-seconds.
    """
    finished = [r for r in runs if r["status"] == "finished" and r.get("train_seconds")]
    if not finished:
        return {"finished_runs": 0}
    per_epoch = sum(r["train_seconds"] for r in finished) / sum(r["epochs"] for r in finished)

    def mean_epochs(variant: str) -> float:
        pool = [r for r in finished if r["variant"] == variant] or finished
        return sum(r["epochs"] for r in pool) / len(pool)

    done = {(r["system"], r["variant"], r["seed"]): r for r in runs}
    remaining, todo, running = 0.0, 0, 0
    for key in planned:
        run = done.get(key)
        if run is not None and run["status"] == "finished":
            continue
        left = mean_epochs(key[1]) - (run["epochs"] if run else 0)
        remaining += max(left, 0.0) * per_epoch
        running += run is not None
        todo += run is None
    return {
        "finished_runs": len(finished),
        "spent_core_hours": sum(r["train_seconds"] for r in finished) / 3600,
        "seconds_per_epoch": per_epoch,
        "mean_epochs": {v: mean_epochs(v) for v in sorted({r["variant"] for r in finished})},
        "planned_jobs": len(planned),
        "running_jobs": running,
        "todo_jobs": todo,
        "remaining_core_hours": remaining / 3600,
    }
