"""ASE route for pansim_nequip models: nequip's own ``NequIPCalculator``, thinly.

pansim's ``PANCalculator`` serves the MACE-backed models of the main environment;
NequIP / Allegro models live in the second environment and are served by
nequip's calculator, which already speaks ASE (energy, free_energy, energies,
forces, stress):

- a trained model (``.ckpt`` from ``nequip-train`` or a ``.nequip.zip`` from
  ``nequip-package``): :func:`load_calculator`;
- a compiled model (``nequip-compile``): ``NequIPCalculator.from_compiled_model``;
- a model object in memory (tests, notebooks): :func:`calculator_from_model`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from nequip.integrations.ase import NequIPCalculator
from nequip.integrations.utils import basic_transforms, handle_chemical_species_map
from nequip.nn import graph_model


def calculator_from_model(model: torch.nn.Module, device: str = "cpu") -> NequIPCalculator:
    """``NequIPCalculator`` for a built ``GraphModel`` (put in eval mode).

    The type names are taken as the chemical symbols (as in pansim's configs).

    Parameters
    ----------
    model : torch.nn.Module
        A ``GraphModel`` returned by a nequip model builder.
    device : str
        Torch device.
    """
    model.eval()
    r_max = float(model.metadata[graph_model.R_MAX_KEY])
    type_names = model.metadata[graph_model.TYPE_NAMES_KEY].split(" ")
    species_map = handle_chemical_species_map(True, type_names)
    transforms = basic_transforms(model.metadata, r_max, type_names, species_map)
    return NequIPCalculator(model=model, device=device, transforms=transforms)


def load_calculator(
    path: str | Path, device: str = "cpu", species_map: bool | dict[str, str] = True
) -> NequIPCalculator:
    """``NequIPCalculator`` for a checkpoint (``.ckpt``) or package (``.nequip.zip``) file.

    Thin wrapper of nequip's own loader (``NequIPCalculator._from_saved_model``,
    the route behind nequip's documented ASE usage), kept here so that a nequip
    rename touches one line.

    Parameters
    ----------
    path : str or Path
        Checkpoint or package file.
    device : str
        Torch device.
    species_map : bool or dict
        nequip's ``chemical_species_to_atom_type_map``; True (pansim's configs):
        the type names are the chemical symbols.
    """
    return NequIPCalculator._from_saved_model(
        str(path), device=device, chemical_species_to_atom_type_map=species_map
    )
