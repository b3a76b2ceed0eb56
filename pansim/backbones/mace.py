"""MACE backbone adapter: ScaleShiftMACE (mace-torch) with PAN and PGS plugged in.

The model is mace's own :class:`~mace.modules.models.ScaleShiftMACE`, built with
mace's blocks (``RealAgnosticResidualInteractionBlock``, symmetric-contraction
products, linear / non-linear readouts). Its ``forward`` reuses every mace
submodule and the helpers of ``mace.modules.utils`` and only tells the
backbone-agnostic modules of :mod:`pansim.modules` where to act:

- PGS edge mixer: right after ``radial_embedding``; the mixed features feed the
  radial MLPs of every interaction where the plain features did;
- PAN: multiplies the l = 0 entries (index 0 of the last axis of mace's
  ``[n_nodes, channels, (lmax + 1)^2]`` message) of every interaction's
  aggregated message by ``s_i``; every interaction block has its own
  :class:`~pansim.modules.pan.PANPooling` (own species weights ``w(Z)`` and MLP),
  all fed by the backbone's polynomial envelope ``u(r)``;
- PGS readout expansion: adds its site energy to every readout, computed from
  the scalar (0e) block of the node features that readout sees, before mace's
  scale/shift (so it is a correction in the same units as the readout).

Design choices within docs/spec.md §1.2 (defaults in :data:`DEFAULTS`): ``n_fb = 8`` j1
functions normalised to a maximum of about 1; ES expansion with K = 8 centres,
``tau = 1``, ``beta = 4``, half-width twice the centre spacing, taper power 2
(``pgs_taper_power = 3`` gives a C^2 basis). ``pgs_edge`` / ``pgs_readout``
switch the two PGS parts independently.

The four variants come from this one class; ``baseline`` carries identity
stand-ins, so its weights are exactly those of a plain ScaleShiftMACE.
Backbone weights are drawn first under ``torch.manual_seed(seed)`` and the extra
modules afterwards under a derived seed, so every variant built with the same
seed has identical backbone weights and, since every extra module starts as an
identity, identical energies and forces at initialisation (docs/spec.md §1.3 invariant 3).

TorchScript: ``torch.jit.script(model)`` works for every variant; e3nn's
trace-mode submodules are traced on the way by :meth:`PANMACE.__prepare_scriptable__`
(on a copy: the eager model is left as it is). Eager calls work under
``torch.no_grad()`` (autograd is switched on inside for forces); scripted calls
need grad mode on.
"""

import copy
import math
from typing import Any

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
from mace.modules.utils import (  # noqa: E402
    get_edge_vectors_and_lengths,
    get_symmetric_displacement,
)
from mace.tools.scatter import scatter_sum  # noqa: E402

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


# -- adapter glue: where the modules act ------------------------------------------
class _KeepEdges(torch.nn.Module):
    """Stand-in for the PGS edge mixer: returns the radial features unchanged."""

    def forward(
        self, radial: torch.Tensor, lengths: torch.Tensor, envelope: torch.Tensor
    ) -> torch.Tensor:
        return radial


class _NoScaling(torch.nn.Module):
    """Stand-in for PAN: returns the message unchanged."""

    def forward(
        self,
        message: torch.Tensor,
        envelope: torch.Tensor,
        node_attrs: torch.Tensor,
        edge_index: torch.Tensor,
    ) -> torch.Tensor:
        return message


class _ScalarMessageScaling(torch.nn.Module):
    """PAN on mace's message layout ``[n_nodes, channels, (lmax + 1)^2]`` (l = 0 at index 0)."""

    def __init__(self, pan: PANPooling) -> None:
        super().__init__()
        self.pan = pan

    def forward(
        self,
        message: torch.Tensor,
        envelope: torch.Tensor,
        node_attrs: torch.Tensor,
        edge_index: torch.Tensor,
    ) -> torch.Tensor:
        s = self.pan(envelope, node_attrs, edge_index[0], edge_index[1])  # [n_nodes, channels]
        return torch.cat([message[:, :, :1] * s.unsqueeze(-1), message[:, :, 1:]], dim=-1)


class _NoExpansion(torch.nn.Module):
    """Stand-in for the PGS readout expansion: site energies unchanged."""

    def forward(self, node_energy: torch.Tensor, node_feats: torch.Tensor) -> torch.Tensor:
        return node_energy


class _ReadoutExpansion(torch.nn.Module):
    """PGS readout expansion on the leading ``num_scalars`` (0e) entries of mace node features."""

    def __init__(self, expansion: ESReadoutExpansion) -> None:
        super().__init__()
        self.expansion = expansion
        self.num_scalars = expansion.num_channels

    def forward(self, node_energy: torch.Tensor, node_feats: torch.Tensor) -> torch.Tensor:
        return node_energy + self.expansion(node_feats[:, : self.num_scalars])


# -- the model ---------------------------------------------------------------------
class PANMACE(ScaleShiftMACE):
    """ScaleShiftMACE with PAN / PGS hooks, following the pansim model contract.

    Build it with :func:`build_mace` (or :func:`pansim.build_model`); the
    constructor takes ScaleShiftMACE's keyword arguments and installs identity
    stand-ins, which :meth:`attach_modules` replaces by the variant's modules.
    """

    def __init__(self, **mace_kwargs: Any) -> None:
        super().__init__(**mace_kwargs)
        n_layers = len(self.interactions)
        self.edge_mixer = _KeepEdges()
        self.pan_layers = torch.nn.ModuleList([_NoScaling() for _ in range(n_layers)])
        self.readout_expansions = torch.nn.ModuleList([_NoExpansion() for _ in self.readouts])
        self.pansim_config = {}
        #: whether a module reads the cutoff envelope (PAN, PGS edge mixer); else not computed
        self.uses_envelope = False

    def attach_modules(self, config: dict[str, Any], use_pan: bool, use_pgs: bool) -> None:
        """Install the PAN / PGS modules of a variant (sizes from ``config``)."""
        channels = int(config["num_channels"])
        if use_pan:
            self.pan_layers = torch.nn.ModuleList(
                [
                    _ScalarMessageScaling(build_pan(config, len(self.atomic_numbers), channels))
                    for _ in self.interactions
                ]
            )
        self.uses_envelope = use_pan or bool(use_pgs and config["pgs_edge"])
        if use_pgs and config["pgs_edge"]:
            self.edge_mixer = build_edge_mixer(config, int(config["num_bessel"]), float(self.r_max))
        if use_pgs and config["pgs_readout"]:
            self.readout_expansions = torch.nn.ModuleList(
                [_ReadoutExpansion(build_es_readout(config, channels)) for _ in self.readouts]
            )

    def __prepare_scriptable__(self) -> torch.nn.Module:
        """A copy whose e3nn trace-mode submodules are traced (called by ``torch.jit.script``)."""
        clone = copy.deepcopy(self)
        for name, child in list(clone.named_children()):
            setattr(clone, name, e3nn_jit.compile(child))
        return clone

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
        positions = data["positions"]
        if not positions.requires_grad:
            positions = positions.detach().clone().requires_grad_(True)
        num_graphs = data["ptr"].numel() - 1
        shifts = data["shifts"]
        strained = positions
        displacement: torch.Tensor | None = None
        if compute_stress:
            displacement = torch.zeros(
                (num_graphs, 3, 3), dtype=positions.dtype, device=positions.device
            ).requires_grad_(True)
            strained, shifts, _ = get_symmetric_displacement(
                positions, data["unit_shifts"], data["cell"], data["edge_index"],
                num_graphs, data["batch"], displacement,
            )  # fmt: skip
        vectors, lengths = get_edge_vectors_and_lengths(strained, data["edge_index"], shifts)
        energy, node_energy = self._energies(data, vectors, lengths, num_graphs)
        forces, stress = _derivatives(
            energy, positions, displacement, data["cell"], training, compute_force
        )
        return {"energy": energy, "node_energy": node_energy, "forces": forces, "stress": stress}

    def _energies(
        self,
        data: dict[str, torch.Tensor],
        vectors: torch.Tensor,
        lengths: torch.Tensor,
        num_graphs: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Total energies [n_graphs] and site energies [n_atoms] (eV)."""
        node_attrs, batch, edge_index = data["node_attrs"], data["batch"], data["edge_index"]
        heads = torch.zeros_like(batch)
        atoms = torch.arange(node_attrs.shape[0], device=node_attrs.device)
        node_e0 = self.atomic_energies_fn(node_attrs)[atoms, heads]
        edge_attrs = self.spherical_harmonics(vectors)
        edge_feats, cutoff = self.radial_embedding(
            lengths, node_attrs, edge_index, self.atomic_numbers
        )
        envelope = lengths  # unused by the stand-ins (baseline): not computed
        if self.uses_envelope:
            envelope = self.radial_embedding.cutoff_fn(lengths)  # [n_edges, 1]
        edge_feats = self.edge_mixer(edge_feats, lengths, envelope)
        node_feats = self.node_embedding(node_attrs)
        features: list[torch.Tensor] = []
        for i, (interaction, product, pan) in enumerate(
            zip(self.interactions, self.products, self.pan_layers)  # noqa: B905 (TorchScript)
        ):
            message, sc = interaction(
                node_attrs=node_attrs, node_feats=node_feats, edge_attrs=edge_attrs,
                edge_feats=edge_feats, edge_index=edge_index, cutoff=cutoff, first_layer=(i == 0),
            )  # fmt: skip
            message = pan(message, envelope, node_attrs, edge_index)
            node_feats = product(node_feats=message, sc=sc, node_attrs=node_attrs)
            features.append(node_feats)
        site: list[torch.Tensor] = []
        for i, (readout, expansion) in enumerate(zip(self.readouts, self.readout_expansions)):  # noqa: B905
            node_es = readout(features[i], heads)[atoms, heads]
            site.append(expansion(node_es, features[i]))
        node_inter = self.scale_shift(torch.sum(torch.stack(site, dim=0), dim=0), heads)
        node_energy = node_e0 + node_inter
        energy = scatter_sum(node_energy, batch, dim=0, dim_size=num_graphs)
        return energy, node_energy


def _derivatives(
    energy: torch.Tensor,
    positions: torch.Tensor,
    displacement: torch.Tensor | None,
    cell: torch.Tensor,
    training: bool,
    compute_force: bool,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Forces ``-dE/dr`` [n_atoms, 3] and stress ``(1/V) dE/d(strain)`` [n_graphs, 3, 3].

    One autograd call for both. Graphs without a 3D cell (volume 0) get zero
    stress, computed without any division by zero (safe for double backward).
    """
    inputs: list[torch.Tensor] = [positions]
    if displacement is not None:
        inputs.append(displacement)
    elif not compute_force:
        return None, None
    grad_outputs: list[torch.Tensor | None] = [torch.ones_like(energy)]
    grads = torch.autograd.grad(
        [energy], inputs, grad_outputs=grad_outputs,
        retain_graph=training, create_graph=training, allow_unused=True,
    )  # fmt: skip
    forces: torch.Tensor | None = None
    if compute_force:
        g = grads[0]
        forces = -g if g is not None else torch.zeros_like(positions)
    stress: torch.Tensor | None = None
    if displacement is not None:
        virial = grads[1]
        if virial is None:
            virial = torch.zeros_like(displacement)
        volume = torch.linalg.det(cell.view(-1, 3, 3)).abs().view(-1, 1, 1)
        has_cell = volume > 0
        safe = torch.where(has_cell, volume, torch.ones_like(volume))
        stress = torch.where(has_cell, virial / safe, torch.zeros_like(virial))
    return forces, stress


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
