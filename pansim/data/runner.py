"""The labelling driver: round-robin over job queues, N worker processes, resumable.

A *queue* is one manifest (a dataset, or the reference-property jobs of a
crystal) plus what to do after each finished job (rewrite the extended XYZ,
refit the reference properties). The driver takes the next pending job of each
queue in turn, so every system gets labels early, runs it in a worker process
(:func:`pansim.data.labelers.run_job`), and records the outcome in the manifest
at once (reload, update, atomic save). Queues are rediscovered before every
pick: systems sampled while a run is going are picked up by it.

Crash safety: a killed driver loses only the jobs in flight; a rerun skips
every ``done`` and ``failed`` job (``retry_failed`` runs the failed ones again)
and never relabels a finished one. One driver per data directory
(``data/.label.lock``).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from pansim.data.labelers import DEFAULT_TIMEOUT_S, run_job
from pansim.data.manifest import Manifest, ManifestError, file_lock


@dataclass
class Queue:
    """One manifest to label and the hook run after each of its jobs finishes."""

    name: str
    path: Path
    after: Callable[[], object] | None = None


@dataclass
class RunSummary:
    """What one :func:`label` call did; ``failures`` holds (queue, key, reason)."""

    done: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: list = field(default_factory=list)


def _next_job(
    queues: list[Queue], start: int, busy: set, retry_failed: bool
) -> tuple[Queue, str, dict] | None:
    """First pending job not in ``busy``, scanning queues from index ``start``."""
    for i in range(len(queues)):
        q = queues[(start + i) % len(queues)]
        if not q.path.exists():
            continue
        m = Manifest.load(q.path)
        for key in m.pending(retry_failed):
            if (q.name, key) not in busy:
                return q, key, m.entries[key]["job"]
    return None


def _record(q: Queue, key: str, result: dict, retry_failed: bool) -> bool:
    """Write the outcome of one job into its manifest; True if labelled now."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with Manifest.update(q.path) as m:
        status = m.entries[key]["status"]
        if status == "done" or (status == "failed" and not retry_failed):
            return False  # recorded already; never relabel
        if result.get("ok"):
            m.mark_done(key, {**result, "finished": stamp})
        else:
            m.mark_failed(key, result.get("error", "unknown error"))
            m.entries[key]["failed_at"] = stamp
    return bool(result.get("ok"))


def _count_pending(queues: list[Queue], retry_failed: bool) -> int:
    return sum(len(Manifest.load(q.path).pending(retry_failed)) for q in queues if q.path.exists())


def _report(
    q: Queue, key: str, result: dict, ok: bool, summary: RunSummary, scratch: Path, write
) -> None:
    now = time.strftime("%H:%M:%S")
    if ok:
        summary.done += 1
        shutil.rmtree(scratch / q.name / key, ignore_errors=True)
        write(
            f"[{now}] done   {q.name}/{key} {result.get('seconds', 0):.0f} s  "
            f"E={result['energy']:.4f} eV"
        )
        if q.after is not None:
            try:
                q.after()
            except (ManifestError, OSError, ValueError) as exc:
                write(f"warning: post-processing {q.name} failed: {exc}")
    elif not result.get("ok"):
        summary.failed += 1
        summary.failures.append((q.name, key, str(result.get("error", ""))))
        write(f"[{now}] FAILED {q.name}/{key}: {str(result.get('error'))[:300]}")


def label(
    queues: Callable[[], list[Queue]] | list[Queue],
    *,
    lock_dir: str | Path,
    scratch: str | Path,
    workers: int = 1,
    limit: int | None = None,
    retry_failed: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> RunSummary:
    """Label pending jobs of ``queues`` until none is left (or ``limit`` jobs ran).

    Parameters
    ----------
    queues : list of Queue, or a callable returning it
        A callable is re-evaluated before every pick (new systems join the run).
    workers : int
        Worker processes at once (one core each).
    limit : int, optional
        Stop after this many jobs (finished or failed).
    """
    get_queues = queues if callable(queues) else (lambda: queues)
    scratch = Path(scratch)
    summary, write, t0 = RunSummary(), log or tqdm.write, time.time()
    with file_lock(Path(lock_dir) / ".label.lock", timeout=0):
        total = _count_pending(get_queues(), retry_failed)
        bar = tqdm(
            total=min(total, limit or total),
            disable=not progress,
            unit="job",
            dynamic_ncols=True,
            mininterval=5,
        )
        busy: dict[Future, tuple[Queue, str]] = {}
        tried: set = set()
        turn, started = 0, 0
        with ThreadPoolExecutor(max_workers=workers) as pool:
            while True:
                while len(busy) < workers and (limit is None or started < limit):
                    qs = get_queues()
                    pick = _next_job(qs, turn, tried, retry_failed) if qs else None
                    if pick is None:
                        break
                    q, key, job = pick
                    turn = (qs.index(q) + 1) % len(qs)
                    tried.add((q.name, key))
                    busy[pool.submit(run_job, job, scratch / q.name / key, timeout)] = (q, key)
                    started += 1
                if not busy:
                    break
                finished, _ = wait(list(busy), return_when=FIRST_COMPLETED)
                for fut in finished:
                    q, key = busy.pop(fut)
                    result = fut.result()
                    ok = _record(q, key, result, retry_failed)
                    _report(q, key, result, ok, summary, scratch, write)
                    bar.total = max(bar.total, bar.n + 1 + len(busy))
                    bar.update(1)
        bar.close()
    summary.seconds = time.time() - t0
    return summary
