"""Fine-tuning a trained pansim model: ``init_from``, ``freeze``, source E0s and replay.

Training config keys (all in :data:`pansim.training.config.LATER_KEYS`, so runs that
do not use them keep their fingerprints):

``init_from: FILE``
    Start from a pansim model file (e.g. one written by ``pansim graft``). The
    architecture (variant, cutoff, element order, every hyperparameter) and the weights
    come from the file: ``variant`` and ``r_max`` are taken from it and
    ``hyperparameters`` must be empty. The data may only contain the model's elements.
``atomic_energies``
    With ``init_from`` the default (``fit``) and ``source`` keep the model's E0s; a
    mapping ``{element: eV}`` replaces them.
``freeze: none | backbone | interactions:N``
    ``backbone``: train only the added PAN / PGS modules
    (:func:`pansim.training.trainer.is_added_parameter`); ``interactions:N``: keep the
    embeddings and the first N interaction and product blocks fixed. Frozen parameters
    get ``requires_grad=False`` and never enter the optimizer or the EMA. To train
    everything with another learning rate for the added modules use ``module_lr_scale``.
``replay_file: FILE``, ``replay_weight: W``
    Structures labelled by the source model (:func:`label_with_model`, ``pansim replay``).
    Each step adds ``W`` times the loss of as many replay structures as the batch has
    (drawn by a seeded permutation of the step number, so resumed runs repeat it).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase.data import chemical_symbols

from pansim.backbones import state_dict_parameters
from pansim.training.config import ConfigError, TrainConfig

_INTERACTIONS = re.compile(r"^interactions:(\d+)$")
#: backbone parts that ``interactions:N`` freezes besides the first N blocks
_EMBEDDINGS = ("node_embedding.", "radial_embedding.", "spherical_harmonics.")


def check_freeze(spec: str) -> None:
    """Raise :class:`ConfigError` unless ``spec`` is none, backbone or interactions:N."""
    if spec in ("none", "backbone"):
        return
    match = _INTERACTIONS.match(str(spec))
    if not match or int(match.group(1)) < 1:
        raise ConfigError(
            f"freeze={spec!r} is not one of 'none', 'backbone', 'interactions:N' (N >= 1)"
        )


def frozen(name: str, spec: str, num_interactions: int) -> bool:
    """Whether parameter ``name`` is frozen under ``spec``."""
    from pansim.training.trainer import is_added_parameter

    if spec == "none" or is_added_parameter(name):
        return False
    if spec == "backbone":
        return True
    n = int(_INTERACTIONS.match(spec).group(1))
    if n > num_interactions:
        raise ConfigError(f"freeze={spec!r}: the model has only {num_interactions} interactions")
    blocks = tuple(f"{part}.{i}." for part in ("interactions", "products") for i in range(n))
    return name.startswith(_EMBEDDINGS + blocks)


def apply_freeze(model: torch.nn.Module, spec: str) -> list[str]:
    """Set ``requires_grad=False`` on the parameters frozen by ``spec``; returns their names.

    Raises
    ------
    ConfigError
        ``spec`` invalid, N larger than the number of interactions, or nothing left to train.
    """
    check_freeze(spec)
    n_layers = len(getattr(model, "interactions", ()))
    names = []
    for name, param in state_dict_parameters(model):  # the model file's names
        if frozen(name, spec, n_layers):
            param.requires_grad_(False)
            names.append(name)
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(
            f"freeze={spec!r} leaves nothing to train (a baseline model has no added modules; "
            "graft one first: pansim graft MODEL --variant pan+pgs)"
        )
    return names


# -- init_from -----------------------------------------------------------------------------
def _model_header(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    from pansim.model_io import ModelFileError, read_model_file

    try:
        config, meta, _ = read_model_file(path)
    except ModelFileError as err:
        raise ConfigError(f"init_from: {err}") from err
    return config, meta


def resolve(config: TrainConfig) -> TrainConfig:
    """``config`` with ``variant``, ``r_max`` and ``elements`` of the ``init_from`` file.

    Raises
    ------
    ConfigError
        Unreadable file, hyperparameters given, elements the model does not know,
        or atomic_energies='source' without ``init_from``.
    """
    if not config.init_from:
        if config.atomic_energies == "source":
            raise ConfigError("atomic_energies='source' needs init_from (a model file)")
        return config
    if config.hyperparameters:
        raise ConfigError(
            f"hyperparameters {sorted(config.hyperparameters)} cannot change a model loaded "
            "with init_from (its architecture comes from the file)"
        )
    model_config, _ = _model_header(config.init_from)
    elements = list(model_config["elements"])
    numbers = [chemical_symbols.index(e) for e in elements]
    if numbers != sorted(numbers):
        raise ConfigError(f"init_from: element order {elements} is not by atomic number")
    _check_data_elements(config, set(numbers), elements)
    return dataclasses.replace(
        config, variant=model_config["variant"], r_max=float(model_config["r_max"]),
        elements=elements,
    )  # fmt: skip


def _check_data_elements(config: TrainConfig, known: set[int], elements: list[str]) -> None:
    from pansim.training.data import elements_in

    files = {
        "train_file": config.train_file,
        "valid_file": config.valid_file,
        "test_file": config.test_file,
        "replay_file": config.replay_file,
    }
    for role, path in files.items():
        if not path:
            continue
        unknown = sorted(elements_in(path) - known)
        if unknown:
            names = [chemical_symbols[z] for z in unknown]
            raise ConfigError(
                f"{role} {path} contains element(s) {names} that the init_from model "
                f"{config.init_from} does not know (it knows {elements})"
            )


def initial_model(config: TrainConfig, atomic_numbers: Sequence[int], dtype: torch.dtype):
    """The ``init_from`` model in ``dtype``, E0s replaced if ``atomic_energies`` is a mapping."""
    from pansim.model_io import load_model
    from pansim.training.data import given_atomic_energies

    model = load_model(config.init_from, dtype=dtype).train()
    if isinstance(config.atomic_energies, dict):
        e0 = given_atomic_energies(config.atomic_energies, atomic_numbers)
        buffer = model.atomic_energies_fn.atomic_energies
        with torch.no_grad():
            buffer.copy_(torch.as_tensor(e0, dtype=buffer.dtype).reshape(buffer.shape))
        model.pansim_config["atomic_energies"] = [float(x) for x in e0]
    return model


def init_kwargs(config: TrainConfig) -> dict[str, Any]:
    """The :func:`pansim.build_model` keyword arguments of the ``init_from`` file."""
    return dict(_model_header(config.init_from)[0])


# -- replay ----------------------------------------------------------------------------------
def replay_indices(n_replay: int, n_batch: int, seed: int, step: int) -> list[int]:
    """Replay structures of one step: the first ``n_batch`` of a seeded permutation."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + 7_919 + step)
    return torch.randperm(n_replay, generator=generator)[: min(n_batch, n_replay)].tolist()


def label_with_model(
    model: str | Path | torch.nn.Module,
    structures: Sequence[Any],
    keys: tuple[str, str, str] = ("REF_energy", "REF_forces", "REF_stress"),
) -> list[Any]:
    """Copies of ``structures`` labelled by ``model`` (energy, forces; stress if periodic).

    ``model`` is anything :class:`pansim.PANCalculator` takes (a pansim model file, a
    registered name, a module); a mace-torch file is grafted first (``pansim graft``,
    variant ``baseline``), which gives the same predictions.
    """
    from ase import Atoms

    from pansim.calculator import PANCalculator

    calc = PANCalculator(model=model)
    energy_key, forces_key, stress_key = keys
    out = []
    for atoms in structures:
        work = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        work.calc = calc
        labelled = work.copy()
        labelled.info[energy_key] = float(work.get_potential_energy())
        labelled.arrays[forces_key] = work.get_forces().copy()
        if np.all(work.pbc):
            labelled.info[stress_key] = work.get_stress(voigt=False).reshape(9)
        out.append(labelled)
    return out
