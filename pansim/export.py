"""Export a pansim model for LAMMPS (``pair_style mace``, TorchScript).

``pansim export MODEL --format libtorch --out FILE`` writes a TorchScript file
with the interface of mace-torch's ``LAMMPS_MACE`` wrapper (the output of
``mace_create_lammps_model``): buffers ``atomic_numbers``, ``r_max``,
``num_interactions``, ``head`` and
``forward(data, local_or_ghost, compute_virials) -> dict`` with
``total_energy_local`` [n_graphs], ``node_energy`` [n_atoms], ``forces``
[n_atoms, 3] (local and ghost atoms; LAMMPS sums ghost forces onto their
owners) and ``virials`` [n_graphs, 3, 3].
"""

from __future__ import annotations

import argparse
import os

import torch

FORMATS: tuple[str, ...] = ("libtorch",)


class LAMMPSWrapper(torch.nn.Module):
    """``pair_style mace``'s view of a pansim model (same interface as ``LAMMPS_MACE``).

    Parameters
    ----------
    model : torch.nn.Module
        A model of the pansim contract (:mod:`pansim.backbones`).
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        dtype = next(model.parameters()).dtype
        self.register_buffer("atomic_numbers", model.atomic_numbers.clone())
        self.register_buffer("r_max", torch.as_tensor(model.r_max, dtype=dtype).clone())
        self.register_buffer(
            "num_interactions", torch.tensor(len(model.interactions), dtype=torch.int64)
        )
        self.register_buffer("head", torch.zeros(1, dtype=torch.int64))
        for param in self.model.parameters():
            param.requires_grad = False

    def forward(
        self,
        data: dict[str, torch.Tensor],
        local_or_ghost: torch.Tensor,
        compute_virials: bool = False,
    ) -> dict[str, torch.Tensor | None]:
        """Energy of the local atoms and its gradient on every (local or ghost) atom.

        Parameters
        ----------
        data : dict of str to Tensor
            MACE graph keys; ``positions`` [n_all, 3] must require grad; LAMMPS
            passes zero ``shifts`` (ghosts are explicit atoms).
        local_or_ghost : Tensor
            [n_all], 1 for local atoms, 0 for ghosts.
        compute_virials : bool
            Also return the virial ``sum_i r_i (x) F_i`` (symmetrised), eV.
        """
        num_graphs = data["ptr"].numel() - 1
        out = self.model(data, training=False, compute_force=False, compute_stress=False)
        node_energy = out["node_energy"]
        if node_energy is None:
            return {
                "total_energy_local": None,
                "node_energy": None,
                "forces": None,
                "virials": None,
            }
        positions = data["positions"]
        local = torch.zeros(num_graphs, dtype=node_energy.dtype, device=node_energy.device)
        local = local.index_add(0, data["batch"], node_energy * local_or_ghost)
        grad_outputs: list[torch.Tensor | None] = [torch.ones_like(local)]
        grad = torch.autograd.grad(
            [local], [positions], grad_outputs=grad_outputs, allow_unused=True
        )[0]
        forces = -grad if grad is not None else torch.zeros_like(positions)
        virials: torch.Tensor | None = None
        if compute_virials:
            outer = positions.unsqueeze(2) * forces.unsqueeze(1)
            v = torch.zeros((num_graphs, 3, 3), dtype=forces.dtype, device=forces.device)
            v = v.index_add(0, data["batch"], outer.detach())
            virials = 0.5 * (v + v.transpose(1, 2))
        return {
            "total_energy_local": local.detach(),
            "node_energy": node_energy.detach(),
            "forces": forces,
            "virials": virials,
        }


def export_libtorch(model: torch.nn.Module, path: str | os.PathLike) -> torch.jit.ScriptModule:
    """Script ``LAMMPSWrapper(model)`` (float64 copy) and save it to ``path``.

    Returns
    -------
    torch.jit.ScriptModule
        The scripted wrapper that was saved.
    """
    import copy

    wrapper = LAMMPSWrapper(copy.deepcopy(model).double().eval())
    scripted = torch.jit.script(wrapper)
    torch.jit.save(scripted, os.fspath(path))
    return scripted


EXPORTERS = {"libtorch": export_libtorch}


def register(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``pansim export``."""
    parser.add_argument("model", help="model file (pansim.model_io) or registered name")
    parser.add_argument("--format", choices=sorted(EXPORTERS), default="libtorch")
    parser.add_argument("--out", required=True, help="output file")


def run(args: argparse.Namespace) -> int:
    """Load the model, export it, print where it went."""
    from pansim.calculator import resolve_model

    model = resolve_model(args.model)
    EXPORTERS[args.format](model, args.out)
    print(f"wrote {args.out} ({args.format})")
    return 0
