"""Stand-ins used only while pansim.backbones.mace / pansim.model_io are not importable.

``install()`` registers them in ``sys.modules`` under the real names, so the
trainer runs its real code path (``build_model`` -> backbone registry, and
``pansim.model_io.save_model``). Once the real modules exist they are used instead.
"""

from __future__ import annotations

import importlib
import sys
import types

import torch

TINY = {
    "num_channels": 8,
    "max_L": 0,
    "correlation": 2,
    "num_interactions": 1,
    "num_bessel": 4,
    "radial_MLP": [8],
}


class Wrapped(torch.nn.Module):
    """A plain ScaleShiftMACE behind the pansim model contract."""

    def __init__(self, inner, atomic_numbers, r_max, config):
        super().__init__()
        self.inner = inner
        self.register_buffer("atomic_numbers", torch.tensor(atomic_numbers, dtype=torch.int64))
        self.register_buffer("r_max", torch.tensor(float(r_max)))
        self.pansim_config = config

    def forward(self, data, training=False, compute_force=True, compute_stress=False):
        out = self.inner(
            dict(data), training=training, compute_force=compute_force,
            compute_stress=compute_stress,
        )  # fmt: skip
        return {k: out.get(k) for k in ("energy", "node_energy", "forces", "stress")}


def build_mace(*, variant, elements, r_max, seed, **hp):
    from ase.data import atomic_numbers as Z

    from pansim._compat import import_mace

    import_mace()
    from e3nn import o3
    from mace.modules import blocks, models

    config = {"variant": variant, "elements": list(elements), "r_max": r_max, "seed": seed, **hp}
    numbers = sorted(Z[e] if isinstance(e, str) else int(e) for e in elements)
    channels, max_l = hp.get("num_channels", 8), hp.get("max_L", 0)
    torch.manual_seed(seed)
    inner = models.ScaleShiftMACE(
        r_max=r_max,
        num_bessel=hp.get("num_bessel", 4),
        num_polynomial_cutoff=hp.get("num_polynomial_cutoff", 5),
        max_ell=max(1, max_l),
        interaction_cls=blocks.RealAgnosticResidualInteractionBlock,
        interaction_cls_first=blocks.RealAgnosticResidualInteractionBlock,
        num_interactions=hp.get("num_interactions", 1),
        num_elements=len(numbers),
        hidden_irreps=o3.Irreps(f"{channels}x0e" + (f"+{channels}x1o" if max_l else "")),
        MLP_irreps=o3.Irreps("8x0e"),
        atomic_energies=torch.tensor(hp["atomic_energies"]).numpy(),
        avg_num_neighbors=hp["avg_num_neighbors"],
        atomic_numbers=numbers,
        correlation=hp.get("correlation", 2),
        gate=torch.nn.functional.silu,
        radial_MLP=hp.get("radial_MLP", [8]),
        atomic_inter_scale=hp["atomic_inter_scale"],
        atomic_inter_shift=hp["atomic_inter_shift"],
    )
    return Wrapped(inner, numbers, r_max, config)


def save_model(model, path, metadata=None):
    torch.save({"config": model.pansim_config, "state": model.state_dict(),
                "metadata": metadata or {}}, path)  # fmt: skip


def load_model(path):
    from pansim.backbones import build_model

    saved = torch.load(path, weights_only=False)
    dtype = next(v.dtype for v in saved["state"].values() if v.is_floating_point())
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        model = build_model(**saved["config"])
    finally:
        torch.set_default_dtype(previous)
    model.load_state_dict(saved["state"])
    model.pansim_metadata = {"provenance": saved["metadata"]}
    return model


def _missing(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return True
    return False


def install() -> dict[str, bool]:
    """Register stand-ins for the modules that are missing; returns what was stood in."""
    used = {}
    if _missing("pansim.backbones.mace"):
        module = types.ModuleType("pansim.backbones.mace")
        module.build_mace = build_mace
        sys.modules["pansim.backbones.mace"] = module
        used["mace"] = True
    if _missing("pansim.model_io"):
        module = types.ModuleType("pansim.model_io")
        module.save_model, module.load_model = save_model, load_model
        sys.modules["pansim.model_io"] = module
        used["model_io"] = True
    return used
