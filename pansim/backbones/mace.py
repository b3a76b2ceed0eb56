"""MACE backbone adapter: mace-torch's own ScaleShiftMACE with PAN and PGS plugged in.

The model is mace's :class:`~mace.modules.models.ScaleShiftMACE`, built by mace's
constructor (mace's blocks: ``RealAgnosticResidualInteractionBlock``,
symmetric-contraction products, linear / non-linear readouts), and it runs mace's
own ``ScaleShiftMACE.forward``: graph set-up (``prepare_graph``), spherical
harmonics, radial embedding, interactions, products, readouts, scale/shift and the
autograd forces. pansim adds no copy of that code; it swaps three of mace's
submodules for small adapters that call the mace block and then the
backbone-agnostic module of :mod:`pansim.modules` on its output:

- ``radial_embedding`` -> :class:`RadialAdapter` (``.block`` is mace's
  ``RadialEmbeddingBlock``): the PGS edge mixer acts right after it, so the mixed
  features feed the radial MLP of every interaction where the plain ones did.
  For PAN it hands the polynomial envelope ``u(r)`` to the interactions in
  mace's ``cutoff`` argument (mace passes that value from the radial embedding to
  every interaction; built with ``apply_cutoff=True``, mace's own value is None);
- ``interactions[i]`` -> :class:`InteractionAdapter` (``.block`` is mace's interaction
  block): PAN multiplies the l = 0 entries (index 0 of the last axis of mace's
  ``[n_nodes, channels, (lmax + 1)^2]`` output) of the block's message by
  ``s_i``, and gives the block the ``cutoff`` mace's radial embedding gave (None).
  Every interaction has its own :class:`~pansim.modules.pan.PANPooling` (own
  species weights ``w(Z)`` and MLP). PAN acts on the block's output, i.e. after
  the block's ``linear`` (which mixes the l = 0 channels among themselves), as
  every trained pansim model did; scaling before ``linear`` (a pre-hook on it)
  would be another function and change every shipped model;
- ``readouts[i]`` -> :class:`ReadoutAdapter` (``.block`` is mace's readout):
  the PGS readout expansion adds its site energy, computed from the scalar (0e)
  block of the node features that readout sees, before mace's scale/shift (a
  correction in the same units as the readout).

A variant without a module keeps mace's block in place (``baseline`` is a plain
ScaleShiftMACE tree). The adapters wrap only the outputs of mace's blocks, so a
new mace release that changes the blocks' insides needs nothing here.

What stays pansim's own, and why (the smallest overrides):

- :meth:`PANMACE.forward` is a thin front to ``ScaleShiftMACE.forward`` that keeps
  pansim's model contract (:mod:`pansim.backbones`): it copies the input dict
  (mace's ``prepare_graph`` writes strained positions and shifts into it and
  switches on ``requires_grad`` of the caller's positions), switches autograd on
  under ``torch.no_grad()``, asks mace for virials and turns them into the stress
  itself: mace divides the virial by the cell volume and zeroes the non-finite
  result, which for a graph without a 3D cell (volume 0) gives NaN gradients in
  double backward (force/stress training); pansim's :func:`_stress` never divides
  by zero. Energies, site energies and forces are mace's.
- TorchScript does not compile ``super()``; mace's forward is reached through
  ``_mace_forward``, the same function under a name of its own (:func:`_renamed`).
- The LAMMPS ML-IAP export (:func:`pansim.export.ghost_site_energies`) runs mace's
  blocks and these adapters in a loop of its own: in LAMMPS mode mace's forward
  gives the later interactions the species of the local atoms only, and PAN's
  coordination needs those of ghost neighbours (:meth:`InteractionAdapter.scale`).
- State dict names. The adapters nest mace's blocks one level deeper
  (``interactions.0.block.linear``) and the PAN/PGS modules inside them. The
  state dict keeps the names of mace and of the model files written before
  (``interactions.0.linear``, ``pan_layers.0.pan``, ``edge_mixer``,
  ``readout_expansions.0.expansion``), in their order (mace's tensors, then
  edge mixer, PAN, readout expansions): :meth:`PANMACE.state_dict` renames and
  :meth:`PANMACE._load_from_state_dict` maps back, by the explicit table of
  :meth:`PANMACE.state_dict_renames`. Shipped model files, checkpoints and
  mace-torch weights (``pansim.graft``) load unchanged, and optimizer / EMA state
  (indexed by parameter position) follows the state dict order
  (:func:`pansim.backbones.state_dict_parameters`).

Design choices within docs/spec.md §1.2 (defaults in :data:`DEFAULTS`): ``n_fb = 8`` j1
functions normalised to a maximum of about 1; ES expansion with K = 8 centres,
``tau = 1``, ``beta = 4``, half-width twice the centre spacing, taper power 2
(``pgs_taper_power = 3`` gives a C^2 basis). ``pgs_edge`` / ``pgs_readout``
switch the two PGS parts independently.

The four variants come from this one class. Backbone weights are drawn first
under ``torch.manual_seed(seed)`` and the extra modules afterwards under a derived
seed, so every variant built with the same seed has identical backbone weights
and, since every extra module starts as an identity, identical energies and
forces at initialisation (docs/spec.md §1.3 invariant 3).

mace-torch versions: 0.3.14 to 0.3.16, each tested (golden values of every
shipped model and ``tests/backbones``). 0.3.13 and older lack what this adapter
uses: ``use_reduced_cg``, and the ``cutoff`` that the radial embedding hands to
the interactions.

TorchScript: ``torch.jit.script(model)`` works for every variant; e3nn's
trace-mode submodules are traced on the way by :meth:`PANMACE.__prepare_scriptable__`
(on a copy: the eager model is left as it is). Eager calls work under
``torch.no_grad()`` (autograd is switched on inside for forces); scripted calls
need grad mode on.
"""

import copy
import math
import types
from typing import Any, Optional

import numpy as np
import torch

from pansim._compat import import_mace
from pansim.modules import (
    MODULE_DEFAULTS,
    build_edge_mixer,
    build_es_readout,
    build_pan,
    variant_flags,
)
from pansim.modules.pan import PANPooling
from pansim.modules.pgs import ESReadoutExpansion

import_mace()
from e3nn import o3  # noqa: E402
from e3nn.util import jit as e3nn_jit  # noqa: E402
from mace.modules.models import ScaleShiftMACE  # noqa: E402

#: default hyperparameters of :func:`build_mace` (all overridable)
DEFAULTS: dict[str, Any] = {
    # backbone (mace)
    "num_channels": 64,
    "max_L": 1,
    "max_ell": 3,
    "correlation": 3,
    "num_interactions": 2,
    "num_bessel": 8,
    "num_polynomial_cutoff": 5,
    "radial_MLP": [64, 64, 64],
    "MLP_irreps": "16x0e",
    "avg_num_neighbors": 16.0,
    "atomic_energies": None,
    "atomic_inter_scale": 1.0,
    "atomic_inter_shift": 0.0,
    # mace options that models grafted from mace-torch files may set (pansim.graft)
    "interaction_first": "RealAgnosticResidualInteractionBlock",
    "interaction": "RealAgnosticResidualInteractionBlock",
    "gate": "silu",
    "radial_type": "bessel",
    "distance_transform": "None",
    "use_reduced_cg": True,
    # PAN and PGS: shared by every backbone adapter
    **MODULE_DEFAULTS,
}


# -- adapters: a mace block, then the pansim module on its output -------------------
class _KeepEdges(torch.nn.Module):
    """Stand-in for the PGS edge mixer (variant pan): returns the radial features unchanged."""

    def forward(
        self, radial: torch.Tensor, lengths: torch.Tensor, envelope: torch.Tensor
    ) -> torch.Tensor:
        return radial


class RadialAdapter(torch.nn.Module):
    """mace's radial embedding, then the PGS edge mixer; the envelope goes to PAN.

    Parameters
    ----------
    block : torch.nn.Module
        mace's ``RadialEmbeddingBlock`` (built with ``apply_cutoff=True``).
    edge_mixer : torch.nn.Module
        A :class:`~pansim.modules.pgs.FourierBesselEdgeMixer`, or :class:`_KeepEdges`.
    envelope_to_interactions : bool
        Return the envelope ``u(r)`` [n_edges, 1] in place of mace's ``cutoff``
        (None), for the :class:`InteractionAdapter` blocks that read it.
    """

    def __init__(
        self, block: torch.nn.Module, edge_mixer: torch.nn.Module, envelope_to_interactions: bool
    ) -> None:
        super().__init__()
        self.block = block
        self.edge_mixer = edge_mixer
        self.envelope_to_interactions = envelope_to_interactions

    def forward(
        self,
        edge_lengths: torch.Tensor,
        node_attrs: torch.Tensor,
        edge_index: torch.Tensor,
        atomic_numbers: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Radial features [n_edges, num_bessel] and mace's ``cutoff`` (or the envelope)."""
        radial, cutoff = self.block(edge_lengths, node_attrs, edge_index, atomic_numbers)
        envelope = self.block.cutoff_fn(edge_lengths)  # [n_edges, 1]
        radial = self.edge_mixer(radial, edge_lengths, envelope)
        if self.envelope_to_interactions:
            return radial, envelope
        return radial, cutoff


class InteractionAdapter(torch.nn.Module):
    """A mace interaction block, then PAN on the l = 0 channels of its message.

    mace's message layout is ``[n_nodes, channels, (lmax + 1)^2]`` with l = 0 at
    index 0 of the last axis. The envelope arrives as ``cutoff`` (from
    :class:`RadialAdapter`); the block gets None, as from mace's radial embedding.

    Parameters
    ----------
    block : torch.nn.Module
        A ``mace.modules.blocks`` interaction block.
    pan : PANPooling
        The PAN module of this interaction (``pan.num_channels`` l = 0 channels).
    """

    def __init__(self, block: torch.nn.Module, pan: PANPooling) -> None:
        super().__init__()
        self.block = block
        self.pan = pan

    def forward(
        self,
        node_attrs: torch.Tensor,
        node_feats: torch.Tensor,
        edge_attrs: torch.Tensor,
        edge_feats: torch.Tensor,
        edge_index: torch.Tensor,
        cutoff: torch.Tensor | None = None,
        lammps_class: Optional[Any] = None,  # noqa: UP045 (TorchScript: Optional[Any])
        lammps_natoms: tuple[int, int] = (0, 0),
        first_layer: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The block's ``(message, sc)`` with the message's l = 0 channels scaled by PAN."""
        message, sc = self.block(
            node_attrs=node_attrs, node_feats=node_feats, edge_attrs=edge_attrs,
            edge_feats=edge_feats, edge_index=edge_index, cutoff=None,
            lammps_class=lammps_class, lammps_natoms=lammps_natoms, first_layer=first_layer,
        )  # fmt: skip
        assert cutoff is not None, "PAN needs the envelope from RadialAdapter"
        return self.scale(message, cutoff, node_attrs, edge_index), sc

    def scale(
        self,
        message: torch.Tensor,
        envelope: torch.Tensor,
        node_attrs: torch.Tensor,
        edge_index: torch.Tensor,
    ) -> torch.Tensor:
        """``message`` [n, channels, (lmax + 1)^2] with its l = 0 entries times ``s_i``.

        ``node_attrs`` [n_nodes, n_elements] may have more rows than ``message``
        (a LAMMPS domain: local atoms first, then ghosts whose species PAN reads).
        """
        s = self.pan(envelope, node_attrs, edge_index[0], edge_index[1])[: message.shape[0]]
        return torch.cat([message[:, :, :1] * s.unsqueeze(-1), message[:, :, 1:]], dim=-1)


class ReadoutAdapter(torch.nn.Module):
    """A mace readout, plus the PGS readout expansion of the leading (0e) node features.

    Parameters
    ----------
    block : torch.nn.Module
        A mace linear or non-linear readout block.
    expansion : ESReadoutExpansion
        On the first ``expansion.num_channels`` entries of the node features.
    """

    def __init__(self, block: torch.nn.Module, expansion: ESReadoutExpansion) -> None:
        super().__init__()
        self.block = block
        self.expansion = expansion
        self.num_scalars = expansion.num_channels

    def forward(self, x: torch.Tensor, heads: torch.Tensor | None = None) -> torch.Tensor:
        """Site energies [n_nodes, n_heads] (eV): the readout's plus the expansion's."""
        return self.block(x, heads) + self.expansion(x[:, : self.num_scalars]).unsqueeze(-1)


#: the adapter classes (pansim's, not mace's, modules of a PANMACE tree)
ADAPTERS = (RadialAdapter, InteractionAdapter, ReadoutAdapter)

#: the model-file order of the state dict: mace's tensors, then these modules' tensors
_ADDED_ORDER = ("edge_mixer.", "pan_layers.", "readout_expansions.")


def _renamed(function: types.FunctionType, name: str) -> types.FunctionType:
    """``function`` under another name (TorchScript compiles a method by its ``__name__``)."""
    copied = types.FunctionType(
        function.__code__, function.__globals__, name, function.__defaults__, function.__closure__
    )
    copied.__kwdefaults__ = function.__kwdefaults__
    copied.__qualname__ = f"{function.__qualname__.rpartition('.')[0]}.{name}"
    return copied


def _renamed_key(key: str, renames: list[tuple[str, str]]) -> str:
    """``key`` with the first matching module path of ``renames`` (old, new) replaced."""
    for old, new in renames:
        if key == old or key.startswith(old + "."):
            return new + key[len(old) :]
    return key


def _file_rank(key: str) -> int:
    """Position of a model-file key's group in the state dict (0: mace's tensors)."""
    return next((i for i, start in enumerate(_ADDED_ORDER, 1) if key.startswith(start)), 0)


# -- the model ---------------------------------------------------------------------
class PANMACE(ScaleShiftMACE):
    """mace's ScaleShiftMACE with PAN / PGS adapters, following the pansim model contract.

    Build it with :func:`build_mace` (or :func:`pansim.build_model`); the
    constructor takes ScaleShiftMACE's keyword arguments and builds a plain
    ScaleShiftMACE, into which :meth:`attach_modules` puts the variant's modules.
    """

    #: ``ScaleShiftMACE.forward`` itself, reachable from TorchScript (no ``super()`` there)
    _mace_forward = _renamed(ScaleShiftMACE.forward, "_mace_forward")

    def __init__(self, **mace_kwargs: Any) -> None:
        super().__init__(**mace_kwargs)
        self.pansim_config = {}
        #: whether a module reads the cutoff envelope (PAN, PGS edge mixer); else not computed
        self.uses_envelope = False

    def attach_modules(self, config: dict[str, Any], use_pan: bool, use_pgs: bool) -> None:
        """Put the PAN / PGS modules of a variant (sizes from ``config``) into the model.

        Built in a fixed order (PAN, edge mixer, readout expansions): the same seed
        gives the same module weights.
        """
        channels = int(config["num_channels"])
        edge = use_pgs and bool(config["pgs_edge"])
        if (use_pan or edge) and not bool(getattr(self, "apply_cutoff", True)):
            raise ValueError("PAN and the PGS edge mixer need mace's apply_cutoff=True")
        pans = [build_pan(config, len(self.atomic_numbers), channels) for _ in self.interactions]
        if use_pan:
            blocks = zip(self.interactions, pans, strict=True)
            self.interactions = torch.nn.ModuleList(InteractionAdapter(b, p) for b, p in blocks)
        self.uses_envelope = use_pan or edge
        if self.uses_envelope:
            mixer = _KeepEdges()
            if edge:
                mixer = build_edge_mixer(config, int(config["num_bessel"]), float(self.r_max))
            self.radial_embedding = RadialAdapter(self.radial_embedding, mixer, use_pan)
        if use_pgs and config["pgs_readout"]:
            self.readouts = torch.nn.ModuleList(
                ReadoutAdapter(block, build_es_readout(config, channels)) for block in self.readouts
            )

    # -- state dict: the names of mace and of the model files ----------------------
    def state_dict_renames(self) -> list[tuple[str, str]]:
        """(module path, state dict name) of every module that an adapter moved.

        E.g. ``("interactions.0.block", "interactions.0")`` (mace's name) and
        ``("interactions.0.pan", "pan_layers.0.pan")`` (the model-file name).
        """
        renames = []
        if isinstance(self.radial_embedding, RadialAdapter):
            renames += [
                ("radial_embedding.block", "radial_embedding"),
                ("radial_embedding.edge_mixer", "edge_mixer"),
            ]
        for i, block in enumerate(self.interactions):
            if isinstance(block, InteractionAdapter):
                renames += [(f"interactions.{i}.block", f"interactions.{i}")]
                renames += [(f"interactions.{i}.pan", f"pan_layers.{i}.pan")]
        for i, block in enumerate(self.readouts):
            if isinstance(block, ReadoutAdapter):
                renames += [(f"readouts.{i}.block", f"readouts.{i}")]
                renames += [(f"readouts.{i}.expansion", f"readout_expansions.{i}.expansion")]
        return renames

    def state_dict_name(self, path: str) -> str:
        """The state dict name of a module path or tensor name.

        E.g. ``interactions.0.block.linear`` -> ``interactions.0.linear``.
        """
        return _renamed_key(path, self.state_dict_renames())

    def state_dict(self, *args: Any, destination=None, prefix: str = "", keep_vars: bool = False):
        """The state dict under mace's and the model files' names, in the model-file order."""
        state = super().state_dict(
            *args, destination=destination, prefix=prefix, keep_vars=keep_vars
        )
        renames = [(prefix + old, prefix + new) for old, new in self.state_dict_renames()]
        mine = [key for key in state if key.startswith(prefix)]
        moved = [(_renamed_key(key, renames), state.pop(key)) for key in mine]
        state.update(sorted(moved, key=lambda item: _file_rank(item[0][len(prefix) :])))
        return state

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: D105
        renames = self.state_dict_renames()
        back = [(prefix + new, prefix + old) for old, new in renames]
        moved_already = tuple(prefix + old + "." for old, _ in renames)
        for key in [k for k in state_dict if k.startswith(prefix)]:
            if not key.startswith(moved_already):
                state_dict[_renamed_key(key, back)] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def __prepare_scriptable__(self) -> torch.nn.Module:
        """A copy whose e3nn trace-mode submodules are traced (called by ``torch.jit.script``)."""
        clone = copy.deepcopy(self)
        for name, child in list(clone.named_children()):
            setattr(clone, name, e3nn_jit.compile(child))
        return clone

    # -- forward: mace's, behind pansim's model contract -----------------------------
    def forward(  # type: ignore[override]
        self,
        data: dict[str, torch.Tensor],
        training: bool = False,
        compute_force: bool = True,
        compute_stress: bool = False,
    ) -> dict[str, torch.Tensor | None]:
        """Energy, site energies, forces and stress (see :mod:`pansim.backbones`).

        Returns
        -------
        dict
            ``energy`` [n_graphs] eV, ``node_energy`` [n_atoms] eV, ``forces``
            [n_atoms, 3] eV/A or None, ``stress`` [n_graphs, 3, 3] eV/A^3 (ASE
            sign; zero for graphs without a 3D cell) or None.
        """
        if torch.jit.is_scripting() or torch.is_grad_enabled():
            return self._evaluate(data, training, compute_force, compute_stress)
        return self._evaluate_with_grad(data, training, compute_force, compute_stress)

    @torch.jit.unused
    def _evaluate_with_grad(
        self,
        data: dict[str, torch.Tensor],
        training: bool,
        compute_force: bool,
        compute_stress: bool,
    ) -> dict[str, torch.Tensor | None]:
        """Eager calls under ``torch.no_grad()``: forces still need autograd."""
        with torch.enable_grad():
            return self._evaluate(data, training, compute_force, compute_stress)

    def _evaluate(
        self,
        data: dict[str, torch.Tensor],
        training: bool,
        compute_force: bool,
        compute_stress: bool,
    ) -> dict[str, torch.Tensor | None]:
        graph = data.copy()  # mace writes the strained positions and shifts into its input
        if not data["positions"].requires_grad:  # mace would switch it on in the caller's tensor
            graph["positions"] = data["positions"].detach().clone().requires_grad_(True)
        out = self._mace_forward(
            graph, training=training, compute_force=compute_force, compute_virials=compute_stress
        )
        energy, node_energy = out["energy"], out["node_energy"]
        assert energy is not None
        assert node_energy is not None
        stress: torch.Tensor | None = None
        if compute_stress:
            stress = _stress(out["virials"], data["cell"], data["ptr"].numel() - 1)
        return {
            "energy": energy,
            "node_energy": node_energy.to(energy.dtype),  # mace sums it in float64
            "forces": out["forces"] if compute_force else None,
            "stress": stress,
        }


def _stress(virials: torch.Tensor | None, cell: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """Stress ``(1/V) dE/d(strain)`` [n_graphs, 3, 3] from mace's virials ``-dE/d(strain)``.

    Graphs without a 3D cell (volume 0) get zero stress, computed without any
    division by zero (safe for double backward).
    """
    volume = torch.linalg.det(cell.view(-1, 3, 3)).abs().view(-1, 1, 1)
    if virials is None or virials.shape[0] != num_graphs:  # energy independent of the strain
        virials = torch.zeros((num_graphs, 3, 3), dtype=cell.dtype, device=cell.device)
    has_cell = volume > 0
    safe = torch.where(has_cell, volume, torch.ones_like(volume))
    return torch.where(has_cell, -virials / safe, torch.zeros_like(virials))


# -- construction ------------------------------------------------------------------
def resolve_elements(elements: list[str] | list[int]) -> list[int]:
    """Atomic numbers of ``elements`` (symbols or numbers), order kept, duplicates refused."""
    from ase.data import atomic_numbers as numbers_by_symbol

    numbers = []
    for e in elements:
        if isinstance(e, str):
            if e not in numbers_by_symbol:
                raise ValueError(f"unknown element symbol {e!r}")
            numbers.append(numbers_by_symbol[e])
        else:
            numbers.append(int(e))
    if not numbers or len(set(numbers)) != len(numbers):
        raise ValueError(f"elements must be a non-empty list without duplicates, got {elements}")
    return numbers


def _atomic_energies(value: Any, numbers: list[int]) -> list[float]:
    """E0s per element (eV) in ``numbers`` order from None, a list or a {symbol: eV} dict."""
    from ase.data import chemical_symbols

    if value is None:
        return [0.0] * len(numbers)
    if isinstance(value, dict):
        keys = {str(k): float(v) for k, v in value.items()}
        missing = [chemical_symbols[z] for z in numbers if chemical_symbols[z] not in keys]
        if missing:
            raise ValueError(f"atomic_energies lacks element(s) {missing}")
        return [keys[chemical_symbols[z]] for z in numbers]
    energies = [float(x) for x in np.asarray(value, dtype=float).reshape(-1)]
    if len(energies) != len(numbers):
        raise ValueError(f"atomic_energies has {len(energies)} values for {len(numbers)} elements")
    return energies


def _mace_kwargs(config: dict[str, Any], numbers: list[int], r_max: float) -> dict[str, Any]:
    """ScaleShiftMACE keyword arguments from a resolved pansim config."""
    c, max_l = int(config["num_channels"]), int(config["max_L"])
    hidden = "+".join(f"{c}x{ell}{'e' if ell % 2 == 0 else 'o'}" for ell in range(max_l + 1))
    return {
        "r_max": float(r_max),
        "num_bessel": int(config["num_bessel"]),
        "num_polynomial_cutoff": int(config["num_polynomial_cutoff"]),
        "max_ell": int(config["max_ell"]),
        "interaction_cls": _interaction_class(config["interaction"]),
        "interaction_cls_first": _interaction_class(config["interaction_first"]),
        "num_interactions": int(config["num_interactions"]),
        "num_elements": len(numbers),
        "hidden_irreps": o3.Irreps(hidden),
        "MLP_irreps": o3.Irreps(config["MLP_irreps"]),
        "atomic_energies": np.asarray(config["atomic_energies"], dtype=float),
        "avg_num_neighbors": float(config["avg_num_neighbors"]),
        "atomic_numbers": list(numbers),
        "correlation": _correlation(config["correlation"]),
        "gate": GATES[config["gate"]],
        "radial_MLP": [int(x) for x in config["radial_MLP"]],
        "atomic_inter_scale": float(config["atomic_inter_scale"]),
        "atomic_inter_shift": float(config["atomic_inter_shift"]),
        "radial_type": str(config["radial_type"]),
        "distance_transform": str(config["distance_transform"]),
        "use_reduced_cg": bool(config["use_reduced_cg"]),
    }


#: readout non-linearities by the names of mace's ``--gate`` option
GATES: dict[str, Any] = {
    "silu": torch.nn.functional.silu,
    "tanh": torch.tanh,
    "abs": torch.abs,
    "None": None,
}


def _interaction_class(name: str) -> type:
    """A mace interaction block class (``mace.modules.blocks``) by its name."""
    from mace.modules import blocks

    cls = getattr(blocks, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, blocks.InteractionBlock)):
        raise ValueError(f"{name!r} is not an interaction block of mace.modules.blocks")
    return cls


def _correlation(value: Any) -> int | list[int]:
    """Correlation order: one int, or one per interaction."""
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return int(value)


def resolve_config(hyperparameters: dict[str, Any], numbers: list[int]) -> dict[str, Any]:
    """Defaults overridden by ``hyperparameters``; unknown names are refused."""
    unknown = sorted(set(hyperparameters) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown MACE hyperparameter(s) {unknown}; known: {sorted(DEFAULTS)}")
    config = {**copy.deepcopy(DEFAULTS), **copy.deepcopy(hyperparameters)}
    config["atomic_energies"] = _atomic_energies(config["atomic_energies"], numbers)
    config["radial_MLP"] = [int(x) for x in config["radial_MLP"]]
    if config["gate"] not in GATES:
        raise ValueError(f"gate must be one of {sorted(GATES)}, got {config['gate']!r}")
    if not (math.isfinite(float(config["c_max"])) and float(config["c_max"]) > 0):
        raise ValueError(f"c_max must be a positive number, got {config['c_max']}")
    return config


def build_mace(
    variant: str,
    elements: list[str] | list[int],
    r_max: float,
    seed: int,
    **hyperparameters: Any,
) -> PANMACE:
    """Build a MACE-backed pansim model of one variant (see :data:`DEFAULTS`).

    Parameters
    ----------
    variant : str
        ``baseline``, ``pan``, ``pgs`` or ``pan+pgs``.
    elements : list of str or int
        Element order of the one-hot species encoding (kept as given).
    r_max : float
        Cutoff radius, Angstrom.
    seed : int
        Seed of the weights; the caller's RNG state is left untouched.
    **hyperparameters
        Overrides of :data:`DEFAULTS`.

    Returns
    -------
    PANMACE
        In the current default dtype; ``model.pansim_config`` rebuilds it.
    """
    use_pan, use_pgs = variant_flags(variant)
    from ase.data import chemical_symbols

    numbers = resolve_elements(elements)
    config = resolve_config(hyperparameters, numbers)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = PANMACE(**_mace_kwargs(config, numbers, r_max))
        torch.manual_seed(int(seed) + 7919)  # extra modules: derived seed, after the backbone
        model.attach_modules(config, use_pan, use_pgs)
    model.pansim_config = {
        "backbone": "mace",
        "variant": variant,
        "elements": [chemical_symbols[z] for z in numbers],
        "r_max": float(r_max),
        "seed": int(seed),
        **config,
    }
    return model
