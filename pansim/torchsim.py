"""A pansim model as a torch-sim model (``torch_sim.models.interface.ModelInterface``).

>>> import torch_sim as ts
>>> from pansim.torchsim import PansimModel
>>> model = PansimModel("si", dtype=torch.float64)
>>> state = ts.io.atoms_to_state(list_of_atoms, model.device, model.dtype)
>>> out = model(state)  # energy [n_systems], forces [n_atoms, 3], stress [n_systems, 3, 3]
>>> final = ts.integrate(list_of_atoms, model, integrator=ts.nvt_langevin,
...                      n_steps=100, temperature=300, timestep=0.002)

Every call evaluates all systems of the state in one batched model call (one
disconnected graph), with neighbour lists from :mod:`pansim.graph` (vesin), so
the results equal :class:`pansim.PANCalculator`'s structure by structure.
Needs ``pip install torch-sim-atomistic`` (``pansim[torchsim]``); it shares
pansim's environment (torch 2.13 is accepted as it is).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from ase import Atoms

from pansim.calculator import resolve_model
from pansim.graph import atoms_to_graph, collate

try:
    from torch_sim.models.interface import ModelInterface
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"pansim.torchsim needs torch-sim ({err}): pip install pansim[torchsim]"
    ) from None


class PansimModel(ModelInterface):
    """torch-sim model of a pansim model: energies per system, forces, stress.

    Parameters
    ----------
    model : str, PathLike or torch.nn.Module
        As for :class:`pansim.PANCalculator` (name, model file or module).
    device : str or torch.device
        Where the model runs.
    dtype : torch.dtype
        Precision of the model and of the outputs.
    compute_forces, compute_stress : bool
        What every call returns (stress needs periodic systems; zero otherwise).
    """

    def __init__(
        self,
        model: str | os.PathLike | torch.nn.Module,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float64,
        compute_forces: bool = True,
        compute_stress: bool = True,
    ) -> None:
        super().__init__()
        self._device = torch.device(device)
        self._dtype = dtype
        self._compute_forces = compute_forces
        self._compute_stress = compute_stress
        self._memory_scales_with = "n_atoms_x_density"
        self.model = resolve_model(model, self._device, dtype)
        self.atomic_numbers = [int(z) for z in self.model.atomic_numbers]
        self.r_max = float(self.model.r_max)

    def forward(self, state: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Energy [n_systems] (eV), forces [n_atoms, 3] (eV/A), stress [n_systems, 3, 3]."""
        data = collate(
            [atoms_to_graph(a, self.atomic_numbers, self.r_max) for a in state_to_atoms(state)],
            dtype=self._dtype,
            device=self._device,
        )
        with torch.set_grad_enabled(self._compute_forces or self._compute_stress):
            out = self.model(
                data, compute_force=self._compute_forces, compute_stress=self._compute_stress
            )
        results = {"energy": out["energy"].detach()}
        if self._compute_forces:
            results["forces"] = out["forces"].detach()
        if self._compute_stress:
            results["stress"] = out["stress"].detach()
        return results


def state_to_atoms(state: Any) -> list[Atoms]:
    """One ``ase.Atoms`` per system of a torch-sim ``SimState`` (or its dict form)."""
    get = state.get if isinstance(state, dict) else lambda key: getattr(state, key)
    positions = get("positions").detach().cpu().double().numpy()
    numbers = get("atomic_numbers").detach().cpu().numpy()
    system = get("system_idx").detach().cpu().numpy()
    cell = state.row_vector_cell if hasattr(state, "row_vector_cell") else get("cell").mT
    cells = cell.detach().cpu().double().numpy()
    pbc = get("pbc")
    pbc = pbc.detach().cpu().numpy() if torch.is_tensor(pbc) else np.array(pbc)
    bounds = np.searchsorted(system, np.arange(len(cells) + 1))
    return [
        Atoms(numbers=numbers[lo:hi], positions=positions[lo:hi], cell=cells[b], pbc=pbc)
        for b, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))  # noqa: B905
    ]
