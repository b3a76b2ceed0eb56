"""Backbone-agnostic scalar-pathway modules (pure torch): PAN pooling and PGS mixers.

Each module knows nothing of any backbone; an adapter (:mod:`pansim.backbones` for
MACE, ``pansim_nequip`` for NequIP and Allegro) tells it where the l = 0 channels,
the edge lengths and the readout are. What every adapter shares lives here: the
module options and their defaults (:data:`MODULE_DEFAULTS`), the ablation variants
(:data:`VARIANT_FLAGS`) and the construction of the modules from those options.
"""

from __future__ import annotations

from typing import Any

from pansim.modules.pan import PANPooling
from pansim.modules.pgs import ESReadoutExpansion, FourierBesselEdgeMixer

#: PAN / PGS options of every backbone adapter, with their defaults (docs/spec.md §1.1, 1.2)
MODULE_DEFAULTS: dict[str, Any] = {
    # PAN: Gaussian basis on [0, c_max] (dimensionless coordination), MLP width
    "c_max": 12.0,
    "pan_num_basis": 8,
    "pan_hidden": 16,
    # PGS: the two parts (each switchable), n_fb j1 functions, K ES functions
    "pgs_edge": True,
    "pgs_readout": True,
    "pgs_num_fb": 8,
    # "full" (spec): learned map of old and new edge features; "residual": old kept as is
    "pgs_edge_mix": "full",
    "pgs_num_es": 8,
    "pgs_tau": 1.0,
    "pgs_beta": 4.0,
    "pgs_width": None,
    "pgs_taper_power": 2,
    # learn the squash centre / width per channel (off in spec; see ESReadoutExpansion)
    "pgs_adaptive_squash": False,
}

#: the ablation variants and the modules each switches on: (PAN, PGS)
VARIANT_FLAGS: dict[str, tuple[bool, bool]] = {
    "baseline": (False, False),
    "pan": (True, False),
    "pgs": (False, True),
    "pan+pgs": (True, True),
}


def variant_flags(variant: str) -> tuple[bool, bool]:
    """``(use_pan, use_pgs)`` of ``variant``; an unknown variant is refused (ValueError)."""
    if variant not in VARIANT_FLAGS:
        raise ValueError(f"unknown variant {variant!r}; available: {list(VARIANT_FLAGS)}")
    return VARIANT_FLAGS[variant]


def build_pan(options: dict[str, Any], num_species: int, num_channels: int) -> PANPooling:
    """A :class:`PANPooling` for ``num_channels`` l = 0 channels from the PAN options."""
    return PANPooling(
        num_species,
        num_channels,
        c_max=float(options["c_max"]),
        num_basis=int(options["pan_num_basis"]),
        hidden=int(options["pan_hidden"]),
    )


def build_edge_mixer(
    options: dict[str, Any], num_radial: int, r_max: float
) -> FourierBesselEdgeMixer:
    """A :class:`FourierBesselEdgeMixer` for ``num_radial`` radial features from the PGS options."""
    return FourierBesselEdgeMixer(
        num_radial, r_max, int(options["pgs_num_fb"]), mix=str(options["pgs_edge_mix"])
    )


def build_es_readout(options: dict[str, Any], num_channels: int) -> ESReadoutExpansion:
    """An :class:`ESReadoutExpansion` for ``num_channels`` scalar channels from the PGS options."""
    return ESReadoutExpansion(
        num_channels,
        num_basis=int(options["pgs_num_es"]),
        tau=float(options["pgs_tau"]),
        beta=float(options["pgs_beta"]),
        width=options["pgs_width"],
        taper_power=int(options["pgs_taper_power"]),
        adaptive=bool(options["pgs_adaptive_squash"]),
    )


__all__ = [
    "MODULE_DEFAULTS",
    "VARIANT_FLAGS",
    "build_edge_mixer",
    "ESReadoutExpansion",
    "FourierBesselEdgeMixer",
    "PANPooling",
    "build_es_readout",
    "build_pan",
    "variant_flags",
]
