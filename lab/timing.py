"""Interleaved timing: the calls being compared run in rounds, a new random order each round.

Interleaving makes a change of machine load hit every call alike, so ratios of medians
are steadier than timings taken one call after another. Used by the benchmarks
(``benchmarks/``) and by the ablation table's time column.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any


def shuffled_rounds(names: Iterable[Any], repeats: int, seed: int = 0) -> Iterator[list[Any]]:
    """``repeats`` orders of ``names``, each a new shuffle (fixed ``seed``): interleaved rounds."""
    order = list(names)
    rng = random.Random(seed)
    for _ in range(repeats):
        rng.shuffle(order)
        yield list(order)


def interleaved(
    calls: dict[Any, Callable[[], Any]], repeats: int, warmup: int = 1, seed: int = 0
) -> dict[Any, dict[str, list[float]]]:
    """Wall, CPU and user-CPU seconds of every call over ``repeats`` shuffled rounds.

    ``cpu`` is the process's CPU time (``time.process_time``, all threads), which other
    processes on the machine do not inflate as they do wall time. ``user`` is the user
    time alone (without the kernel's share: page faults, zeroing fresh memory), 10 ms
    resolution on Linux: meaningful for calls of 1 s and more. ``warmup`` rounds run
    first, unmeasured (TorchScript / e3nn warm-up).
    """
    for _ in range(warmup):
        for call in calls.values():
            call()
    samples = {name: {"wall": [], "cpu": [], "user": []} for name in calls}
    for order in shuffled_rounds(calls, repeats, seed):
        for name in order:
            start, start_cpu, start_user = time.perf_counter(), time.process_time(), os.times()
            calls[name]()
            samples[name]["user"].append(os.times().user - start_user.user)
            samples[name]["cpu"].append(time.process_time() - start_cpu)
            samples[name]["wall"].append(time.perf_counter() - start)
    return samples
