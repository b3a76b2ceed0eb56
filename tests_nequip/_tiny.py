"""Tiny float64 NequIP / Allegro builds shared by the tests (no conftest imports)."""

from __future__ import annotations

from typing import Any

from nequip.utils.global_state import set_global_state
from pansim_nequip.model import AllegroPANModel, NequIPPANModel

R_MAX = 3.5
TYPE_NAMES = ["C", "H", "O"]

NEQUIP_TINY: dict[str, Any] = {
    "num_layers": 2,
    "l_max": 1,
    "num_features": 8,
    "radial_mlp_depth": 1,
    "radial_mlp_width": 8,
    "num_bessels": 6,
    "avg_num_neighbors": 6.0,
    "per_type_energy_scales": 1.0,
    "per_type_energy_shifts": 0.0,
}

ALLEGRO_TINY: dict[str, Any] = {
    "l_max": 1,
    "num_layers": 2,
    "num_scalar_features": 8,
    "num_tensor_features": 4,
    "allegro_mlp_hidden_layers_width": 8,
    "readout_mlp_hidden_layers_width": 8,
    "scalar_embed_mlp_hidden_layers_width": 8,
    "radial_chemical_embed": {"_target_": "allegro.nn.TwoBodyBesselScalarEmbed", "num_bessels": 6},
    "avg_num_neighbors": 6.0,
    "per_type_energy_scales": 1.0,
    "per_type_energy_shifts": 0.0,
}

BUILDERS = {"nequip": (NequIPPANModel, NEQUIP_TINY), "allegro": (AllegroPANModel, ALLEGRO_TINY)}


def build(backbone: str, variant: str, seed: int = 0, **overrides: Any):
    """A tiny float64 model of one backbone and variant (GraphModel, eval mode)."""
    set_global_state()
    builder, kwargs = BUILDERS[backbone]
    model = builder(
        variant=variant,
        seed=seed,
        model_dtype="float64",
        type_names=overrides.pop("type_names", TYPE_NAMES),
        r_max=overrides.pop("r_max", R_MAX),
        **{**kwargs, **overrides},
    )
    return model.eval()
