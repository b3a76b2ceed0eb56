"""Bounds on a model file's config and weights, checked before anything is built.

:func:`pansim.model_io.load_model` calls :func:`check_model_file` on the parsed
config, metadata and tensors of a file *before* building the architecture, so a
file whose config asks for a huge model (``correlation: 12`` builds coupling
tensors of many GB), names an element that does not exist, or disagrees with its
own weights is refused in milliseconds with a message naming the key.

What is checked
---------------
- every architecture size is an integer value (``32.0`` is accepted, ``32.7``
  is not) inside :data:`INT_BOUNDS`;
- ``elements``: 1 to 118 distinct symbols or atomic numbers 1..118;
- ``r_max`` and every float hyperparameter finite (``r_max`` in (0, 30] A,
  ``avg_num_neighbors`` and ``c_max`` positive);
- the weights agree with the config: element count, channel count, number of
  interaction blocks, radial basis size, radial MLP widths, correlation order,
  the stored cutoff;
- every floating-point tensor has the dtype the metadata declares and only
  finite values.

The bounds are generous (several times the sizes pansim trains); they exist to
keep a malformed or hostile file from exhausting memory, not to limit models.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch

#: architecture integers and their allowed closed ranges
INT_BOUNDS: dict[str, tuple[int, int]] = {
    "num_channels": (1, 512),
    "max_L": (0, 3),
    "max_ell": (0, 4),
    "correlation": (1, 4),
    "num_interactions": (1, 6),
    "num_bessel": (1, 64),
    "num_polynomial_cutoff": (1, 32),
    "pan_num_basis": (1, 128),
    "pan_hidden": (1, 1024),
    "pgs_num_fb": (1, 128),
    "pgs_num_es": (1, 128),
    "pgs_taper_power": (0, 16),
    "pgs_width": (1, 1024),
}
#: largest width and depth of the radial MLP
RADIAL_MLP_MAX = (1024, 8)
#: largest cutoff radius (Angstrom) a file may declare
R_MAX_LIMIT = 30.0
#: float hyperparameters that must be finite (and positive where listed)
FINITE = ("atomic_inter_scale", "atomic_inter_shift", "pgs_tau", "pgs_beta")
POSITIVE = ("avg_num_neighbors", "c_max")

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class ModelBoundsError(ValueError):
    """A config or weights outside the bounds (the message names the key)."""


def _as_int(name: str, value: Any) -> int:
    """``value`` as an int when it is an integer value (bools and 32.7 refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelBoundsError(f"{name} must be an integer, not {value!r}")
    if not math.isfinite(value) or value != int(value):
        raise ModelBoundsError(f"{name} must be an integer, not {value!r}")
    return int(value)


#: integers that MACE also takes as one value per interaction layer
PER_LAYER = ("correlation",)


def _int_or_per_layer(name: str, value: Any, num_interactions: Any) -> list[int]:
    """``value`` as a list of ints: one int, or (for :data:`PER_LAYER`) one per layer."""
    if name in PER_LAYER and isinstance(value, list):
        if not value or (num_interactions is not None and len(value) != num_interactions):
            raise ModelBoundsError(
                f"{name} per layer must list one integer per interaction "
                f"({num_interactions}), not {value!r}"
            )
        return [_as_int(name, v) for v in value]
    return [_as_int(name, value)]


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelBoundsError(f"{name} must be a number, not {value!r}")
    if not math.isfinite(value):
        raise ModelBoundsError(f"{name} must be finite, not {value!r}")
    return float(value)


def element_numbers(elements: Any) -> list[int]:
    """Atomic numbers of a config's ``elements`` (symbols or 1..118), duplicates refused."""
    from ase.data import atomic_numbers, chemical_symbols

    if not isinstance(elements, list) or not 1 <= len(elements) <= 118:
        raise ModelBoundsError(f"elements must be a list of 1 to 118 elements, not {elements!r}")
    numbers = []
    for e in elements:
        if isinstance(e, str):
            if e not in atomic_numbers or atomic_numbers[e] == 0:
                raise ModelBoundsError(f"elements: unknown element symbol {e!r}")
            numbers.append(atomic_numbers[e])
        else:
            z = _as_int("elements", e)
            if not 1 <= z < len(chemical_symbols):
                raise ModelBoundsError(f"elements: atomic number {z} is not in 1..118")
            numbers.append(z)
    if len(set(numbers)) != len(numbers):
        raise ModelBoundsError(f"elements has duplicates: {elements!r}")
    return numbers


def check_config(config: Any) -> dict[str, int]:
    """Check the bounds of a model config; return its architecture integers.

    Raises
    ------
    ModelBoundsError
        Naming the first key that is missing, not an integer value, out of
        bounds or not finite.
    """
    if not isinstance(config, dict):
        raise ModelBoundsError(f"config must be a JSON object, not {type(config).__name__}")
    sizes = {"num_elements": len(element_numbers(config.get("elements")))}
    r_max = _as_float("r_max", config.get("r_max"))
    if not 0.0 < r_max <= R_MAX_LIMIT:
        raise ModelBoundsError(f"r_max must be in (0, {R_MAX_LIMIT}] A, not {r_max}")
    for name, (lo, hi) in INT_BOUNDS.items():
        if config.get(name) is None:
            continue
        values = _int_or_per_layer(name, config[name], config.get("num_interactions"))
        for value in values:
            if not lo <= value <= hi:
                raise ModelBoundsError(f"{name} = {value} is outside the allowed range {lo}..{hi}")
        sizes[name] = values[0]  # per-layer lists (correlation): layer 0 is checked below
    mlp = config.get("radial_MLP", [])
    if not isinstance(mlp, list) or len(mlp) > RADIAL_MLP_MAX[1]:
        raise ModelBoundsError(f"radial_MLP must be a list of at most {RADIAL_MLP_MAX[1]} widths")
    for width in mlp:
        if not 1 <= _as_int("radial_MLP", width) <= RADIAL_MLP_MAX[0]:
            raise ModelBoundsError(f"radial_MLP width {width} is outside 1..{RADIAL_MLP_MAX[0]}")
    for name in FINITE + POSITIVE:
        if config.get(name) is not None:
            value = _as_float(name, config[name])
            if name in POSITIVE and value <= 0:
                raise ModelBoundsError(f"{name} must be positive, not {value}")
    energies = config.get("atomic_energies")
    if isinstance(energies, list):
        for e in energies:
            _as_float("atomic_energies", e)
    return sizes


def check_tensors(tensors: dict[str, torch.Tensor], dtype_name: Any) -> None:
    """Every floating-point tensor of ``dtype_name`` and finite.

    Raises
    ------
    ModelBoundsError
        Naming the first tensor of another floating dtype, or with NaN/inf.
    """
    if dtype_name not in _DTYPES:
        raise ModelBoundsError(
            f"metadata dtype must be one of {sorted(_DTYPES)}, not {dtype_name!r}"
        )
    declared = _DTYPES[dtype_name]
    for name, t in sorted(tensors.items()):
        if t.is_floating_point() or t.is_complex():
            if t.dtype != declared:
                raise ModelBoundsError(f"tensor {name} is {t.dtype}, the file declares {declared}")
            if not bool(torch.isfinite(t).all()):
                raise ModelBoundsError(f"tensor {name} holds NaN or inf values")


def _check(ok: bool, what: str, config_value: Any, weights_value: Any) -> None:
    if not ok:
        raise ModelBoundsError(
            f"shape mismatch: config {what} = {config_value} does not match the weights "
            f"({weights_value})"
        )


def check_consistency(
    config: dict, sizes: dict[str, int], tensors: dict[str, torch.Tensor]
) -> None:
    """The MACE weights agree with the config's sizes (checked only where the tensor exists)."""
    n_el, channels = sizes["num_elements"], sizes.get("num_channels")
    if "atomic_numbers" in tensors:
        stored = tensors["atomic_numbers"].reshape(-1).tolist()
        _check(
            stored == element_numbers(config["elements"]), "elements", config["elements"], stored
        )
    if "r_max" in tensors:
        stored = float(tensors["r_max"])
        _check(math.isclose(stored, float(config["r_max"])), "r_max", config["r_max"], stored)
    embed = tensors.get("node_embedding.linear.weight")
    if embed is not None and channels is not None:
        _check(
            embed.numel() == n_el * channels,
            "elements x num_channels",
            n_el * channels,
            embed.numel(),
        )
    blocks = {int(m.group(1)) for k in tensors if (m := re.match(r"interactions\.(\d+)\.", k))}
    if blocks and "num_interactions" in sizes:
        _check(
            len(blocks) == sizes["num_interactions"],
            "num_interactions",
            sizes["num_interactions"],
            len(blocks),
        )
    _check_radial(config, sizes, tensors)
    orders = {
        int(m.group(1))
        for k in tensors
        if (
            m := re.match(
                r"products\.0\.symmetric_contractions\.contractions\.0\.weights\.(\d+)$", k
            )
        )
    }
    if orders and "correlation" in sizes:
        # weights_max holds the highest order, weights.0 .. weights.{correlation-2} the others
        _check(
            len(orders) + 1 == sizes["correlation"],
            "correlation",
            sizes["correlation"],
            len(orders) + 1,
        )


def _check_radial(config: dict, sizes: dict[str, int], tensors: dict[str, torch.Tensor]) -> None:
    layers = sorted(
        (int(m.group(1)), t)
        for k, t in tensors.items()
        if (m := re.match(r"interactions\.0\.conv_tp_weights\.layer(\d+)\.weight$", k))
    )
    if not layers:
        return
    if "num_bessel" in sizes:
        first = layers[0][1]
        _check(
            first.shape[0] == sizes["num_bessel"], "num_bessel", sizes["num_bessel"], first.shape[0]
        )
    mlp = [int(w) for w in config.get("radial_MLP", [])]
    widths = [int(t.shape[1]) for _, t in layers[:-1]]
    if mlp:
        _check(widths == mlp, "radial_MLP", mlp, widths)


def check_model_file(config: Any, meta: Any, tensors: dict[str, torch.Tensor]) -> None:
    """All checks of this module, in order: config bounds, tensor dtypes and values, consistency."""
    sizes = check_config(config)
    check_tensors(tensors, (meta or {}).get("dtype") if isinstance(meta, dict) else None)
    check_consistency(config, sizes, tensors)
