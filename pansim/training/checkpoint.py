"""Checkpoints: state dicts only, written atomically, read with ``weights_only=True``.

A checkpoint holds everything a run needs to continue bit for bit: model,
optimizer, scheduler and EMA state dicts, the random states of Python, NumPy
and torch, the position (epoch, step, batch within the epoch), the early
stopping state, the metric history and the config fingerprint.
"""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pansim._io import atomic_path


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed (other config, missing or damaged file)."""


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())


def load(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint (tensors and plain Python containers only).

    Raises
    ------
    CheckpointError
        A missing, truncated or damaged file (the message names it).
    """
    if not Path(path).exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        first = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
        raise CheckpointError(
            f"checkpoint {path} cannot be read: the file is truncated or damaged "
            f"({type(err).__name__}: {first}); remove it to start over"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} does not hold a pansim training state")
    return state


def rng_state() -> dict[str, Any]:
    """The random states of Python, NumPy and torch as weights-only-loadable objects."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])


def check_fingerprint(state: dict[str, Any], fingerprint: str, path: str | Path) -> None:
    """Refuse to resume a checkpoint written by a run with other settings."""
    if state.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"checkpoint {path} was written by a run with a different config or data "
            "(fingerprint mismatch); resume only with the same settings (max_steps, out_dir, "
            "checkpoint_every, device, progress, test_file may change, and max_epochs unless "
            "the schedule is cosine) or start a new out_dir"
        )
