"""Errors of one model on a labelled file: the shared step of the result scripts.

``scripts/tuning.py`` (the final test of a chosen trial), ``scripts/active_effect.py``
(before/after on the old and the active test splits) and ``scripts/errors_by_route.py``
(force MAE per sampling route) all load a model in float64 and run ``pansim eval``'s
metrics (:func:`pansim.training.report.evaluate_file`) on one file; this is that step.
"""

from __future__ import annotations

import os
from pathlib import Path

KEYS = ("REF_energy", "REF_forces", "REF_stress")
QUANTITIES = ("energy_per_atom", "forces", "stress")


def evaluate(model: str | os.PathLike, path: str | os.PathLike, keys=KEYS):
    """``(metrics, samples, predictions)`` of ``model`` on the labelled file ``path``.

    ``model`` is a registered name or a model file; it is loaded in float64.
    """
    from pansim.model_io import load_model
    from pansim.pretrained import model_file
    from pansim.training.report import evaluate_file

    return evaluate_file(load_model(model_file(model), dtype="float64"), Path(path), tuple(keys))


def maes(model: str | os.PathLike, path: str | os.PathLike, keys=KEYS) -> dict:
    """MAE per quantity (meV/atom, meV/A, GPa) and ``n_structures`` of ``model`` on ``path``."""
    result, _, _ = evaluate(model, path, keys)
    out = {key: result[key]["mae"] for key in QUANTITIES}
    out["n_structures"] = result["n_structures"]
    return out
