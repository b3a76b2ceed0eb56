"""Committees: several models of one architecture evaluated together, with their spread.

>>> calc = PANCalculator(model=["a.safetensors", "b.safetensors", "c.safetensors"])
>>> calc = PANCalculator(model="si-committee")        # seeds 0-2 of the shipped Si model
>>> atoms.calc = calc; atoms.get_forces()              # the committee mean
>>> calc.results["forces_std"]                         # per-atom disagreement, eV/A

The members share one neighbour graph per structure (built once with the common
cutoff) and are evaluated one after another on it; ``PANCalculator`` returns the
mean energy, forces and stress under the standard keys and the spread under the
keys of :data:`COMMITTEE_KEYS`.

Registered committee names (:func:`committee_files`) are resolved here:
``<model>-committee`` for a registered pretrained model ``<model>`` (see
``pansim.pretrained``) whose entry names a ``system`` and a ``variant`` is the
list ``results/training/<system>/<variant>-seed{0,1,2}/best_model.safetensors``
of the repository (the three training seeds of that model). An entry may name its
committee's runs instead (``"committee": "results/training/si/pan+pgs"``: the members
are ``<that>-seed{0,1,2}/best_model.safetensors`` below the repository), for a model
whose own seeds 1-2 are not trained yet (``si-committee``: the registry says which
runs). ``si-baseline-committee`` is the committee of the Si baseline.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: committee keys added to ``PANCalculator.results`` (units in the values)
COMMITTEE_KEYS: dict[str, str] = {
    "energy_std": "float, eV: standard deviation of the members' total energies",
    "energy_members": "[n_members], eV: the members' total energies",
    "forces_std": (
        "[n_atoms], eV/A: per atom, the rms over members of |F_m - mean F| "
        "(the deviation of the force vector)"
    ),
    "forces_std_max": "float, eV/A: the largest entry of forces_std",
    "stress_std": "[6] Voigt, eV/A^3: standard deviation of each stress component",
}

#: training seeds that form a registered committee
COMMITTEE_SEEDS = (0, 1, 2)
COMMITTEE_SUFFIX = "-committee"
TRAINING_RESULTS = Path(__file__).resolve().parent.parent / "results" / "training"


class CommitteeError(ValueError):
    """Members that cannot form one committee (different elements or cutoffs, too few)."""


def is_committee(model: Any) -> bool:
    """True for a list/tuple of models, or a registered committee name."""
    if isinstance(model, (list, tuple)):
        return True
    return isinstance(model, str) and model.endswith(COMMITTEE_SUFFIX)


def committee_files(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """Model files of the registered committee ``name`` (``<model>-committee``).

    Parameters
    ----------
    name : str
        ``<model>-committee`` with ``<model>`` a registered pretrained model.
    root : PathLike, optional
        Folder of the training results (default: the repository's ``results/training``);
        an entry that names its committee's runs (``"committee"``) is resolved in the
        repository instead.

    Raises
    ------
    pansim.pretrained.UnknownModelError
        ``<model>`` is not registered.
    CommitteeError
        The entry names no system/variant, or a seed's file is missing.
    """
    from pansim.pretrained import model_entry

    if not name.endswith(COMMITTEE_SUFFIX):
        raise CommitteeError(f"{name!r} is not a committee name (<model>{COMMITTEE_SUFFIX})")
    entry = model_entry(name[: -len(COMMITTEE_SUFFIX)])
    system, variant = entry.get("system"), entry.get("variant")
    if not system or not variant:
        raise CommitteeError(f"{entry['name']!r} names no system and variant: no committee")
    base = Path(root) if root is not None else TRAINING_RESULTS
    prefix = base / system / variant
    if entry.get("committee"):  # runs named by the entry, relative to the repository
        prefix = TRAINING_RESULTS.parent.parent / entry["committee"]
    files = [
        prefix.parent / f"{prefix.name}-seed{k}" / "best_model.safetensors" for k in COMMITTEE_SEEDS
    ]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise CommitteeError(f"committee {name!r}: missing member files {missing}")
    return files


class Committee(torch.nn.Module):
    """Several models of the pansim contract evaluated on one batch; mean and members.

    Parameters
    ----------
    members : sequence of torch.nn.Module
        Ready models (eval mode, frozen) with the same ``atomic_numbers`` and ``r_max``.

    Notes
    -----
    ``forward`` returns the mean ``energy``, ``node_energy``, ``forces`` and
    ``stress`` (so it is a model of the pansim contract itself) and the stacked
    member outputs under ``members_<key>`` ([n_members, ...]).
    """

    def __init__(self, members: Sequence[torch.nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise CommitteeError(f"a committee needs at least 2 members, got {len(members)}")
        numbers = [[int(z) for z in m.atomic_numbers] for m in members]
        cutoffs = [float(m.r_max) for m in members]
        for k in range(1, len(members)):
            if numbers[k] != numbers[0]:
                raise CommitteeError(
                    f"committee member {k} knows elements {_symbols(numbers[k])}, member 0 "
                    f"knows {_symbols(numbers[0])}: all members must cover the same elements"
                )
            if abs(cutoffs[k] - cutoffs[0]) > 1e-9:
                raise CommitteeError(
                    f"committee member {k} has r_max {cutoffs[k]} A, member 0 {cutoffs[0]} A: "
                    "all members must share one cutoff (they share one neighbour graph)"
                )
        self.members = torch.nn.ModuleList(members)
        self.register_buffer("atomic_numbers", torch.tensor(numbers[0], dtype=torch.long))
        self.r_max = cutoffs[0]

    def forward(
        self,
        data: dict[str, torch.Tensor],
        compute_force: bool = True,
        compute_stress: bool = False,
        training: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Every member on ``data``; the mean under the standard keys, members stacked."""
        kwargs = {"compute_force": compute_force, "compute_stress": compute_stress}
        if training:
            kwargs["training"] = True
        outs = [m(dict(data), **kwargs) for m in self.members]
        result: dict[str, torch.Tensor] = {}
        for key in ("energy", "node_energy", "forces", "stress"):
            values = [o.get(key) for o in outs]
            if any(v is None for v in values):
                continue
            stacked = torch.stack([v.detach() for v in values])
            result[key] = stacked.mean(dim=0)
            result[f"members_{key}"] = stacked
        return result


def _symbols(numbers: list[int]) -> list[str]:
    from ase.data import chemical_symbols

    return [chemical_symbols[z] for z in numbers]


def resolve_committee(
    model: str | Sequence[str | os.PathLike | torch.nn.Module],
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> Committee:
    """A ready :class:`Committee` from a committee name or a list of names/paths/modules."""
    from pansim.calculator import resolve_model

    items = committee_files(model) if isinstance(model, str) else list(model)
    return Committee([resolve_model(m, device, dtype) for m in items]).eval()


def add_committee_results(
    out: dict[str, torch.Tensor], ptr: np.ndarray, results: list[dict]
) -> None:
    """Add the :data:`COMMITTEE_KEYS` of each structure to its ``results`` dict (in place)."""
    energies = out["members_energy"].cpu().double().numpy()  # [M, G]
    forces = out.get("members_forces")
    forces = None if forces is None else forces.cpu().double().numpy()  # [M, N, 3]
    stress = out.get("members_stress")
    stress = None if stress is None else stress.cpu().double().numpy()  # [M, G, 3, 3]
    for g, r in enumerate(results):
        r["energy_members"] = energies[:, g].copy()
        r["energy_std"] = float(energies[:, g].std())
        if forces is not None:
            f = forces[:, ptr[g] : ptr[g + 1]]
            dev = np.linalg.norm(f - f.mean(axis=0), axis=-1)  # [M, n]
            r["forces_std"] = np.sqrt((dev**2).mean(axis=0))
            r["forces_std_max"] = float(r["forces_std"].max(initial=0.0))
        if stress is not None:
            s = stress[:, g]
            voigt = np.stack(
                [s[:, 0, 0], s[:, 1, 1], s[:, 2, 2], s[:, 1, 2], s[:, 0, 2], s[:, 0, 1]]
            )
            r["stress_std"] = voigt.std(axis=1)


def committee_provenance(source: Any, default_dtype: str) -> dict[str, str]:
    """Provenance of a committee (``calc.parameters``): its name and every member's file and hash.

    ``source`` is a registered committee name or a list of model names/files (the members'
    stems form the name); a list of in-memory modules is named as such, without files.
    """
    from pansim.pretrained import model_file
    from pansim.provenance import KEYS, file_sha256

    out = dict.fromkeys(KEYS, "")
    out["dtype"] = str(default_dtype)
    if isinstance(source, str):
        name, files = source, committee_files(source)
    elif all(isinstance(m, (str, os.PathLike)) for m in source):
        files = [Path(model_file(m)) for m in source]
        stems = [Path(m).stem for m in source]
        if len(set(stems)) < len(stems):  # e.g. run folders' best_model: add the folder
            stems = [f"{Path(m).parent.name}/{Path(m).stem}" for m in source]
        name = "committee(" + ", ".join(stems) + ")"
    else:
        out["model_name"] = f"<in-memory committee of {len(source)}>"
        return out
    out["model_name"] = name
    out["model_file"] = ", ".join(str(Path(f).resolve()) for f in files)
    out["model_sha256"] = ", ".join(file_sha256(f) for f in files)
    return out
