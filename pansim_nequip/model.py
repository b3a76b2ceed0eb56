"""nequip model builders: NequIP and Allegro with the pansim variants, from one code path.

Use them in a nequip config like any other builder::

    model:
      _target_: pansim_nequip.model.NequIPPANModel   # or AllegroPANModel
      variant: pan+pgs                               # baseline | pan | pgs | pan+pgs
      seed: 0
      model_dtype: float32
      type_names: [Si]
      r_max: 5.0
      ...                                            # the backbone's own arguments

Each builder first calls the backbone's own builder (``nequip.model.NequIPGNNModel``,
``allegro.model.AllegroModel``) with the backbone arguments, then attaches the
variant's modules (:func:`attach_pansim_modules`) under a forked RNG. Hence the
same ``seed`` gives identical backbone weights in every variant, ``baseline`` *is*
the backbone's own model, and since every pansim module starts as an identity,
all variants give the same energies and forces at initialisation (docs/spec.md §1.3, invariant 3).

Where the modules act (:data:`BACKBONE_SITES`):

======== ========================================== =============================================
module   NequIP                                     Allegro
======== ========================================== =============================================
PGS edge after ``BesselEdgeLengthEncoding`` (radial after the same encoding inside the two-body
         features feeding every radial MLP)         scalar embedding (before its radial x type
                                                    product)
PAN      0e channels of every interaction block's   l = 0 entries of the per-centre environment
         aggregated message (tp_scatter output),    sum of every Allegro layer, at Allegro's
         one PANPooling per block                   avg_num_neighbors normalisation (one
                                                    PANPooling shared by the layers, as the
                                                    normalisation is)
PGS read ``node_features`` (final 0e features) ->   last ``num_scalar_features`` channels of the
         ``atomic_energy``, before scale/shift      scalar track -> ``edge_energy`` (summed per
                                                    atom), times the envelope ``u(r_ij)``
======== ========================================== =============================================

PAN's envelope ``u(r)`` is the backbone's ``edge_cutoff`` (its polynomial cutoff).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from nequip.data import AtomicDataDict
from nequip.model import NequIPGNNModel, model_builder
from nequip.nn import SequentialGraphNetwork
from nequip.nn.embedding import BesselEdgeLengthEncoding
from nequip.nn.interaction_block import InteractionBlock
from nequip.nn.model_modifier_utils import replace_submodules

from pansim.modules import MODULE_DEFAULTS, build_es_readout, build_pan, variant_flags
from pansim_nequip.nn import (
    EdgeMixerModule,
    PANAmplitude,
    PANEnvNormalization,
    PANInteractionBlock,
    ReadoutExpansionModule,
    scalar_slice,
)


@dataclass(frozen=True)
class BackboneSites:
    """Where a backbone keeps its l = 0 aggregate and its readout.

    Attributes
    ----------
    attach_pan : callable
        ``(energy_model, make_pan) -> None``; ``make_pan(num_channels)`` returns a
        :class:`~pansim_nequip.nn.PANAmplitude`.
    readout : callable
        ``(energy_model) -> (after, feature_field, energy_field, num_channels)``: the
        readout module name, the scalar features it reads, the energy it writes and
        how many (trailing) feature channels the ES expansion sees.
    readout_on_edges : bool
        Whether that readout lives on edges (then the ES correction is weighted by
        the envelope, so it vanishes smoothly at the cutoff).
    """

    attach_pan: Callable[[SequentialGraphNetwork, Callable[[int], PANAmplitude]], None]
    readout: Callable[[SequentialGraphNetwork], tuple[str, str, str, int]]
    readout_on_edges: bool = False


def _nequip_pan(energy: SequentialGraphNetwork, make_pan: Callable[[int], PANAmplitude]) -> None:
    def factory(block: InteractionBlock) -> PANInteractionBlock:
        start, stop = scalar_slice(block.tp_scatter.irreps_mid)
        return PANInteractionBlock.adopt(block, make_pan(stop - start))

    replace_submodules(energy, InteractionBlock, factory)


def _nequip_readout(energy: SequentialGraphNetwork) -> tuple[str, str, str, int]:
    features = energy.per_atom_energy_readout.irreps_in[AtomicDataDict.NODE_FEATURES_KEY]
    return (
        "per_atom_energy_readout",
        AtomicDataDict.NODE_FEATURES_KEY,
        AtomicDataDict.PER_ATOM_ENERGY_KEY,
        features.num_irreps,
    )


def _allegro_pan(energy: SequentialGraphNetwork, make_pan: Callable[[int], PANAmplitude]) -> None:
    allegro = energy.allegro
    irreps_dim = allegro.irreps_in[allegro.tensor_basis_in_field].dim
    allegro.avg_num_neighbors_norm = PANEnvNormalization(
        allegro.avg_num_neighbors_norm, make_pan(allegro.num_tensor_features), irreps_dim
    )


def _allegro_readout(energy: SequentialGraphNetwork) -> tuple[str, str, str, int]:
    return (
        "edge_readout",
        AtomicDataDict.EDGE_FEATURES_KEY,
        AtomicDataDict.EDGE_ENERGY_KEY,
        energy.allegro.num_scalar_features,
    )


#: backbone name -> its sites (one registry; the attach code below is shared)
BACKBONE_SITES: dict[str, BackboneSites] = {
    "nequip": BackboneSites(attach_pan=_nequip_pan, readout=_nequip_readout),
    "allegro": BackboneSites(
        attach_pan=_allegro_pan, readout=_allegro_readout, readout_on_edges=True
    ),
}


def _find_sequence(model: torch.nn.Module, cls: type) -> tuple[SequentialGraphNetwork, str]:
    """The SequentialGraphNetwork holding the (first) child of type ``cls``, and its name."""
    for module in model.modules():
        if isinstance(module, SequentialGraphNetwork):
            for name, child in module.named_children():
                if isinstance(child, cls):
                    return module, name
    raise ValueError(f"no {cls.__name__} in the model")


def _attach_edge_mixer(energy: SequentialGraphNetwork, options: dict[str, Any]) -> None:
    sequence, name = _find_sequence(energy, BesselEdgeLengthEncoding)
    mixer = EdgeMixerModule(
        int(options["pgs_num_fb"]),
        irreps_in=getattr(sequence, name).irreps_out,
        mix=str(options["pgs_edge_mix"]),
    )
    sequence.insert("pgs_edge_mixer", mixer, after=name)


def _attach_readout(
    energy: SequentialGraphNetwork, sites: BackboneSites, options: dict[str, Any]
) -> None:
    after, feature_field, energy_field, channels = sites.readout(energy)
    module = ReadoutExpansionModule(
        build_es_readout(options, channels),
        feature_field,
        energy_field,
        irreps_in=getattr(energy, after).irreps_out,
        edge_envelope=sites.readout_on_edges,
    )
    energy.insert("pgs_readout_expansion", module, after=after)


def resolve_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pop the pansim options out of the builder ``kwargs``; defaults for the rest."""
    options = copy.deepcopy(MODULE_DEFAULTS)
    for key in MODULE_DEFAULTS:
        if key in kwargs:
            options[key] = kwargs.pop(key)
    return options


def attach_pansim_modules(
    model: torch.nn.Module,
    backbone: str,
    variant: str,
    num_types: int,
    options: dict[str, Any],
) -> torch.nn.Module:
    """Attach a variant's PAN / PGS modules to a freshly built nequip energy model.

    Parameters
    ----------
    model : torch.nn.Module
        ``ForceStressOutput`` around the backbone's ``SequentialGraphNetwork``
        (what a nested nequip builder returns); modified in place.
    backbone : str
        ``nequip`` or ``allegro`` (a key of :data:`BACKBONE_SITES`).
    variant : str
        ``baseline``, ``pan``, ``pgs`` or ``pan+pgs``.
    num_types : int
        Number of atom types.
    options : dict
        Resolved pansim options (:data:`pansim.modules.MODULE_DEFAULTS`).

    Returns
    -------
    torch.nn.Module
        ``model``. The modules are created under a forked RNG, after the backbone:
        the backbone weights do not depend on the variant.
    """
    use_pan, use_pgs = variant_flags(variant)
    sites, energy = BACKBONE_SITES[backbone], model.func

    def make_pan(num_channels: int) -> PANAmplitude:
        return PANAmplitude(build_pan(options, num_types, num_channels), num_types)

    with torch.random.fork_rng(devices=[]):
        if use_pgs and options["pgs_edge"]:
            _attach_edge_mixer(energy, options)
        if use_pan:
            if AtomicDataDict.EDGE_CUTOFF_KEY not in energy.irreps_out:
                raise ValueError("PAN needs the backbone's edge_cutoff (a Bessel radial encoding)")
            sites.attach_pan(energy, make_pan)
        if use_pgs and options["pgs_readout"]:
            _attach_readout(energy, sites, options)
    return model


@model_builder
def NequIPPANModel(variant: str = "pan+pgs", **kwargs: Any) -> torch.nn.Module:
    """NequIP (``nequip.model.NequIPGNNModel``) with a pansim variant.

    Parameters
    ----------
    variant : str
        ``baseline``, ``pan``, ``pgs`` or ``pan+pgs``.
    **kwargs
        pansim options (``pansim.modules.MODULE_DEFAULTS``) and every argument of
        ``NequIPGNNModel`` (``seed``, ``model_dtype``, ``type_names``, ``r_max``,
        ``num_layers``, ...).
    """
    options = resolve_options(kwargs)
    model = NequIPGNNModel(**kwargs)
    return attach_pansim_modules(model, "nequip", variant, len(kwargs["type_names"]), options)


@model_builder
def AllegroPANModel(variant: str = "pan+pgs", **kwargs: Any) -> torch.nn.Module:
    """Allegro (``allegro.model.AllegroModel``) with a pansim variant.

    Parameters
    ----------
    variant : str
        ``baseline``, ``pan``, ``pgs`` or ``pan+pgs``.
    **kwargs
        pansim options (``pansim.modules.MODULE_DEFAULTS``) and every argument of
        ``AllegroModel`` (``l_max``, ``radial_chemical_embed`` with
        ``allegro.nn.TwoBodyBesselScalarEmbed``, ``num_layers``, ``num_scalar_features``, ...).
    """
    from allegro.model import AllegroModel

    options = resolve_options(kwargs)
    model = AllegroModel(**kwargs)
    return attach_pansim_modules(model, "allegro", variant, len(kwargs["type_names"]), options)
