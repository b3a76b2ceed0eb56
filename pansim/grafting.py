"""Graft PAN / PGS onto a trained MACE: a mace-torch or pansim model file in, a pansim model out.

>>> import pansim
>>> model = pansim.graft("MACE_run.model", variant="pan", out="grafted.safetensors",
...                      trust_pickle=True)

The source is either

- a **mace-torch model file**: the pickled ``torch.nn.Module`` that ``mace_run_train``
  writes (``torch.save(model, path)``), of class ``MACE`` or ``ScaleShiftMACE``. A
  pickle runs code while it loads (and e3nn's modules rebuild TorchScript from bytes
  in the file), so such a file is read only with ``trust_pickle=True``
  (``--trust-pickle``); see ``docs/graft.md``;
- a **pansim model file** (``.safetensors``): safe to read; grafting gives it another
  variant (e.g. ``baseline`` -> ``pan+pgs``), keeping the modules it already has.

The pansim model is built with the source's architecture (:func:`mace_architecture`),
every source weight is copied into it, and the added modules start as identities.
Before anything is written, the model is saved to a temporary file, reloaded, and the
reloaded model's energies, forces and stress are compared with the source's on a periodic
and a molecular structure (:func:`check_identity`); if any differs by more than the
tolerance of the dtype (:data:`TOLERANCES`), nothing is written and :class:`GraftError`
says by how much.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from pansim._compat import import_mace, preserved_environ

#: mace-torch model classes a graft accepts
SUPPORTED_CLASSES = ("MACE", "ScaleShiftMACE")

#: largest difference allowed between source and grafted model (energy eV, forces eV/A,
#: stress eV/A^3), absolute, plus a part relative to the largest source value of each
TOLERANCES: dict[str, dict[str, float]] = {
    "float64": {"atol": 1e-10, "rtol": 1e-12},
    "float32": {"atol": 1e-5, "rtol": 1e-5},
}

#: buffers whose shape differs between mace versions ([n] or [1, n]; [] or [1]), same numbers
_RESHAPEABLE = ("atomic_energies_fn.atomic_energies", "scale_shift.scale", "scale_shift.shift")


class GraftError(ValueError):
    """A source that cannot be grafted, or a graft that would change predictions."""


# -- reading the source ---------------------------------------------------------------
def file_kind(path: str | os.PathLike) -> str:
    """``"pansim"``, ``"torchscript"``, ``"pickle"`` (torch.save zip or legacy) by content.

    Raises
    ------
    GraftError
        Missing, empty or unrecognised file.
    """
    path = Path(path)
    if not path.is_file():
        raise GraftError(f"{path}: no such file")
    head = _head(path)
    if len(head) < 8:
        raise GraftError(f"{path}: file is empty or truncated ({len(head)} bytes)")
    if head[:4] == b"PK\x03\x04":
        return _zip_kind(path)
    if head[:1] == b"\x80":
        return "pickle"
    header_len = int.from_bytes(head[:8], "little")
    if 0 < header_len < path.stat().st_size and head[8:9] == b"{":
        return "pansim"
    raise GraftError(
        f"{path}: not a MACE model file (neither a torch.save file nor a pansim model file)"
    )


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(16)


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        raise GraftError(f"{path}: corrupt or truncated torch file ({err})") from err
    if any(n.split("/", 2)[1:2] == ["code"] for n in names):
        return "torchscript"
    return "pickle"


def load_mace_file(path: str | os.PathLike, trust_pickle: bool = False) -> torch.nn.Module:
    """The ``torch.nn.Module`` pickled in a mace-torch model file, in eval mode on the CPU.

    Parameters
    ----------
    path : str or PathLike
        A file written by ``torch.save(model, path)`` (what ``mace_run_train`` writes).
    trust_pickle : bool
        Must be True: unpickling runs code from the file.

    Raises
    ------
    GraftError
        Without ``trust_pickle``; for a TorchScript (compiled) file, a corrupt file, a
        file whose classes this mace-torch lacks, or one that holds no model.
    """
    path = Path(path)
    kind = file_kind(path)
    if kind == "torchscript":
        raise GraftError(
            f"{path}: a TorchScript (compiled) model; graft the plain model file that "
            "mace_run_train writes next to it (the one without '_compiled')"
        )
    if kind == "pansim":
        raise GraftError(f"{path}: a pansim model file, not a mace-torch one")
    if not trust_pickle:
        raise GraftError(
            f"{path}: a mace-torch model file is a Python pickle, and loading it runs code "
            "from the file; pass --trust-pickle (trust_pickle=True) if you trust its origin"
        )
    import_mace()
    try:
        with preserved_environ():  # unpickling may import mace modules that set env vars
            obj = torch.load(path, map_location="cpu", weights_only=False)
    except (ModuleNotFoundError, AttributeError, ImportError) as err:
        raise GraftError(
            f"{path}: refers to code this installation lacks ({err}); it was probably "
            f"written by a newer mace-torch than {_mace_version()}"
        ) from err
    except Exception as err:  # noqa: BLE001 (any unpickling failure means a bad file)
        problem = f"{type(err).__name__}: {err}"
        raise GraftError(f"{path}: corrupt or truncated model file ({problem})") from err
    if not isinstance(obj, torch.nn.Module):
        raise GraftError(
            f"{path}: holds a {type(obj).__name__}, not a model; save the model object "
            "itself (torch.save(model, path)), as mace_run_train does"
        )
    return obj.eval()


def _mace_version() -> str:
    from pansim.model_io import versions

    return f"mace-torch {versions()['mace-torch']}"


def sha256_of(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- the architecture -------------------------------------------------------------------
def _unsupported_options(model: torch.nn.Module) -> list[str]:
    """The mace options that the pansim MACE adapter does not reproduce, by name."""
    checks = {
        "pair_repulsion (ZBL)": hasattr(model, "pair_repulsion_fn"),
        "joint_embedding (embedding_specs)": hasattr(model, "joint_embedding"),
        "use_so3": bool(getattr(model, "use_so3", False)),
        "use_agnostic_product": bool(getattr(model, "use_agnostic_product", False)),
        "use_last_readout_only": bool(getattr(model, "use_last_readout_only", False)),
        "edge_irreps": getattr(model, "edge_irreps", None) is not None,
        "apply_cutoff=False": getattr(model, "apply_cutoff", True) is False,
        "cueq_config (cuEquivariance)": _enabled(getattr(model, "cueq_config", None)),
        "oeq_config (OpenEquivariance)": _enabled(getattr(model, "oeq_config", None)),
        "lammps_mliap": bool(getattr(model, "lammps_mliap", False)),
    }
    heads = list(getattr(model, "heads", None) or ["Default"])
    if len(heads) > 1:
        checks[f"several heads {heads} (keep one with mace_select_head first)"] = True
    return [name for name, present in checks.items() if present]


def _enabled(config: Any) -> bool:
    """Whether a cueq / oeq config (an object or a dict) is switched on."""
    if config is None:
        return False
    if isinstance(config, dict):
        return bool(config.get("enabled", True))
    return bool(getattr(config, "enabled", True))


def _gate_name(model: torch.nn.Module) -> str:
    from pansim.backbones.mace import GATES

    readout = model.readouts[-1]
    acts = getattr(getattr(readout, "non_linearity", None), "acts", None)
    if not acts:
        return "silu"  # a single interaction has only a linear readout: the gate is unused
    fn = getattr(acts[0], "f", acts[0])
    for name, gate in GATES.items():
        if gate is not None and (fn is gate or getattr(fn, "__name__", None) == gate.__name__):
            return name
    raise GraftError(f"readout non-linearity {fn!r} is not one of {sorted(GATES)}")


def _hidden_irreps(model: torch.nn.Module) -> tuple[int, int]:
    """(num_channels, max_L) of the hidden features (a uniform ``Cx0e+Cx1o+...``)."""
    from e3nn import o3

    irreps = o3.Irreps(str(model.products[0].linear.irreps_out))
    channels = {mul for mul, _ in irreps}
    expected = [(ell, (-1) ** ell) for ell in range(len(irreps))]
    if len(channels) != 1 or [(ir.l, ir.p) for _, ir in irreps] != expected:
        raise GraftError(
            f"hidden irreps {irreps} are not supported (pansim builds C x 0e + C x 1o + "
            "C x 2e + ... with one channel count C)"
        )
    return channels.pop(), len(irreps) - 1


def _correlations(model: torch.nn.Module) -> int | list[int]:
    orders = []
    for product in model.products:
        contraction = product.symmetric_contractions.contractions[0]
        order = getattr(contraction, "correlation", None)
        orders.append(int(order) if order is not None else len(contraction.weights) + 1)
    return orders[0] if len(set(orders)) == 1 else orders


def _radial_mlp(model: torch.nn.Module) -> list[int]:
    try:
        from mace.tools.scripts_utils import extract_radial_MLP
    except ImportError:  # mace-torch 0.3.14 reads the e3nn MLP's widths the same way
        return [int(x) for x in model.interactions[0].conv_tp_weights.hs[1:-1]]
    return [int(x) for x in extract_radial_MLP(model)]


def _radial_type(model: torch.nn.Module) -> str:
    names = {"BesselBasis": "bessel", "GaussianBasis": "gaussian", "ChebychevBasis": "chebyshev"}
    name = type(model.radial_embedding.bessel_fn).__name__
    if name not in names:
        raise GraftError(f"radial basis {name} is not supported (known: {sorted(names)})")
    return names[name]


def _distance_transform(model: torch.nn.Module) -> str:
    transform = getattr(model.radial_embedding, "distance_transform", None)
    if transform is None:
        return "None"
    names = {"AgnesiTransform": "Agnesi", "SoftTransform": "Soft"}
    name = type(transform).__name__
    if name not in names:
        raise GraftError(f"distance transform {name} is not supported (known: {sorted(names)})")
    return names[name]


def mace_architecture(model: torch.nn.Module) -> dict[str, Any]:
    """:func:`pansim.build_model` keyword arguments (variant excluded) of a mace-torch model.

    Raises
    ------
    GraftError
        A class other than :data:`SUPPORTED_CLASSES`, or an option pansim does not
        reproduce (each named).
    """
    from ase.data import chemical_symbols

    cls = type(model).__name__
    if cls not in SUPPORTED_CLASSES:
        raise GraftError(
            f"MACE variant {cls} is not supported; graft accepts {list(SUPPORTED_CLASSES)}"
        )
    unsupported = _unsupported_options(model)
    if unsupported:
        raise GraftError(f"{cls} uses option(s) pansim does not support: {unsupported}")
    channels, max_l = _hidden_irreps(model)
    numbers = [int(z) for z in model.atomic_numbers]
    scale_shift = getattr(model, "scale_shift", None)
    last = model.readouts[-1]
    mlp = getattr(last, "hidden_irreps", None)
    hyper = {
        "num_channels": channels,
        "max_L": max_l if len(model.interactions) > 1 else 0,
        "max_ell": int(model.spherical_harmonics._lmax),
        "correlation": _correlations(model),
        "num_interactions": len(model.interactions),
        "num_bessel": int(model.radial_embedding.out_dim),
        "num_polynomial_cutoff": int(model.radial_embedding.cutoff_fn.p),
        "radial_MLP": _radial_mlp(model),
        "MLP_irreps": str(mlp) if mlp is not None else "16x0e",
        "avg_num_neighbors": float(model.interactions[0].avg_num_neighbors),
        "atomic_energies": _floats(model.atomic_energies_fn.atomic_energies),
        "atomic_inter_scale": _scalar(scale_shift.scale) if scale_shift is not None else 1.0,
        "atomic_inter_shift": _scalar(scale_shift.shift) if scale_shift is not None else 0.0,
        "interaction_first": type(model.interactions[0]).__name__,
        "interaction": type(model.interactions[-1]).__name__,
        "gate": _gate_name(model),
        "radial_type": _radial_type(model),
        "distance_transform": _distance_transform(model),
        "use_reduced_cg": bool(getattr(model, "use_reduced_cg", False)),
    }
    inner = {type(block).__name__ for block in model.interactions[1:]}
    if len(inner) > 1:
        raise GraftError(f"interactions after the first mix classes {sorted(inner)}")
    return {
        "backbone": "mace",
        "elements": [chemical_symbols[z] for z in numbers],
        "r_max": float(model.r_max),
        **hyper,
    }


def _floats(tensor: torch.Tensor) -> list[float]:
    return [float(x) for x in tensor.detach().cpu().double().reshape(-1)]


def _scalar(tensor: torch.Tensor) -> float:
    values = _floats(torch.as_tensor(tensor))
    if len(values) != 1:
        raise GraftError(f"per-head scale/shift {values} is not supported (one head only)")
    return values[0]


def _model_dtype(model: torch.nn.Module) -> torch.dtype:
    dtypes = {p.dtype for p in model.parameters()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (torch.float32, torch.float64):
        raise GraftError(f"model parameters must share float32 or float64, got {dtypes}")
    return dtypes.pop()


# -- building and copying ---------------------------------------------------------------
def _check_module_options(options: dict[str, Any]) -> dict[str, Any]:
    from pansim.modules import MODULE_DEFAULTS

    unknown = sorted(set(options) - set(MODULE_DEFAULTS))
    if unknown:
        raise GraftError(f"unknown module option(s) {unknown}; known: {sorted(MODULE_DEFAULTS)}")
    return dict(options)


def _build(config: dict[str, Any], dtype: torch.dtype) -> torch.nn.Module:
    from pansim.backbones import build_model
    from pansim.model_io import default_dtype

    try:
        with default_dtype(dtype):
            return build_model(**config).to(dtype=dtype)
    except (TypeError, ValueError, KeyError) as err:
        raise GraftError(f"pansim cannot build this architecture ({err})") from err


def _check_same_structure(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Every submodule and attribute of the mace source exists, of the same class, in target.

    pansim's adapters nest mace's blocks one level deeper; target's modules are
    compared under their state dict names (mace's), the adapters themselves skipped.
    """
    from pansim.backbones.mace import ADAPTERS

    theirs = {name: type(m).__name__ for name, m in source.named_modules()}
    ours = {
        target.state_dict_name(name): type(m).__name__
        for name, m in target.named_modules()
        if not isinstance(m, ADAPTERS)
    }
    ours[""] = type(source).__name__  # the root: PANMACE stands in for (ScaleShift)MACE
    missing = sorted(n for n in theirs if n not in ours)
    if missing:
        raise GraftError(
            f"the source has submodules pansim does not build: {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''} (a newer or modified mace-torch?)"
        )
    different = {n: (theirs[n], ours[n]) for n in theirs if theirs[n] != ours[n]}
    if different:
        raise GraftError(f"submodule classes differ (source, pansim): {different}")
    unknown = sorted(set(vars(source)) - set(vars(target)))
    if unknown:
        raise GraftError(
            f"the source model has fields this mace-torch ({_mace_version()}) does not "
            f"know: {unknown} (written by a newer mace-torch?)"
        )


def copy_weights(source: torch.nn.Module, target: torch.nn.Module) -> list[str]:
    """Copy every tensor of ``source``'s state dict into ``target``; returns target-only keys.

    Raises
    ------
    GraftError
        A source tensor ``target`` lacks or whose size differs, or a target-only tensor
        that is neither an added PAN / PGS module's nor (for a plain MACE) the scale/shift.
    """
    from pansim.training.trainer import is_added_parameter

    theirs, ours = source.state_dict(), target.state_dict()
    lacking = sorted(set(theirs) - set(ours))
    if lacking:
        raise GraftError(f"pansim's model lacks the source tensors {lacking[:8]}")
    new_state = dict(ours)
    for key, value in theirs.items():
        mine = ours[key]
        if value.shape != mine.shape:
            if key.endswith(_RESHAPEABLE) and value.numel() == mine.numel():
                value = value.reshape(mine.shape)
            else:
                raise GraftError(f"{key}: shape {tuple(value.shape)} != {tuple(mine.shape)}")
        new_state[key] = value.to(dtype=mine.dtype) if mine.is_floating_point() else value
    target.load_state_dict(new_state, strict=True)
    added = sorted(set(ours) - set(theirs))
    odd = [k for k in added if not (is_added_parameter(k) or k.startswith("scale_shift."))]
    if odd:
        raise GraftError(f"pansim's model has tensors the source lacks: {odd[:8]}")
    return added


# -- the identity check ------------------------------------------------------------------
def check_structures(elements: list[str]) -> list[tuple[str, Atoms]]:
    """A periodic cell (8 atoms) and a molecule-like cluster (6 atoms) of the model's elements."""
    from pansim.testing import random_atoms

    n = len(elements)
    picks = sorted({int(round(x)) for x in np.linspace(0, n - 1, min(n, 4))})
    chosen = [elements[i] for i in picks]
    periodic = random_atoms([chosen[k % len(chosen)] for k in range(8)], True, 0, 14.0, 1.8)
    cluster = random_atoms([chosen[(k + 1) % len(chosen)] for k in range(6)], False, 1, 9.0, 1.5)
    return [("periodic", periodic), ("molecular", cluster)]


def _evaluate(model: torch.nn.Module, atoms: Atoms, dtype: torch.dtype) -> dict[str, np.ndarray]:
    from pansim.graph import atoms_to_graph, collate

    numbers = [int(z) for z in model.atomic_numbers]
    data = collate([atoms_to_graph(atoms, numbers, float(model.r_max))], dtype=dtype)
    periodic = bool(np.all(atoms.pbc))
    with torch.enable_grad():
        out = model(data, compute_force=True, compute_stress=periodic)
    values = {"energy": out["energy"], "forces": out["forces"]}
    if periodic:
        values["stress"] = out["stress"]
    return {k: v.detach().cpu().double().numpy() for k, v in values.items()}


def check_identity(
    source: torch.nn.Module,
    grafted: torch.nn.Module,
    structures: list[tuple[str, Atoms]] | None = None,
) -> dict[str, Any]:
    """Largest differences of energy, forces and stress between two models.

    Returns
    -------
    dict
        ``dtype``, ``tolerance`` (:data:`TOLERANCES`) and ``max_abs_diff``
        {structure: {quantity: value}}.

    Raises
    ------
    GraftError
        If any difference exceeds the tolerance.
    """
    dtype = _model_dtype(source)
    name = "float64" if dtype == torch.float64 else "float32"
    tol = TOLERANCES[name]
    if structures is None:
        from ase.data import chemical_symbols

        elements = [chemical_symbols[int(z)] for z in source.atomic_numbers]
        structures = check_structures(elements)
    diffs: dict[str, dict[str, float]] = {}
    failures = []
    for label, atoms in structures:
        ref, new = _evaluate(source, atoms, dtype), _evaluate(grafted, atoms, dtype)
        diffs[label] = {}
        for key, expected in ref.items():
            diff = float(np.max(np.abs(new[key] - expected)))
            diffs[label][key] = diff
            if not diff <= tol["atol"] + tol["rtol"] * float(np.max(np.abs(expected))):
                failures.append(f"{label} {key} differs by {diff:.3g}")
    report = {"dtype": name, "tolerance": tol, "max_abs_diff": diffs}
    if failures:
        raise GraftError(
            f"the grafted model does not reproduce the source ({'; '.join(failures)}; "
            f"tolerance {tol}); nothing written"
        )
    return report


# -- the graft ---------------------------------------------------------------------------
def _source_model(
    source: str | os.PathLike | torch.nn.Module, trust_pickle: bool
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The source module and its provenance."""
    if isinstance(source, torch.nn.Module):
        return source, {"source": f"in-memory {type(source).__name__}"}
    path = Path(source)
    if not path.exists() and "/" not in str(source):  # a registered pretrained name
        from pansim.pretrained import UnknownModelError, model_file

        try:
            path = Path(model_file(str(source)))
        except UnknownModelError as err:
            raise GraftError(str(err)) from err
    info = {"source": str(source), "source_sha256": None}
    if file_kind(path) == "pansim":
        from pansim.model_io import ModelFileError, load_model

        try:
            model = load_model(path)
        except ModelFileError as err:
            raise GraftError(str(err)) from err
    else:
        model = load_mace_file(path, trust_pickle=trust_pickle)
    info["source_sha256"] = sha256_of(path)
    return model, info


def _target_config(
    source: torch.nn.Module, variant: str, seed: int, options: dict[str, Any]
) -> dict[str, Any]:
    config = getattr(source, "pansim_config", None)
    if config:  # a pansim model: same architecture, another variant
        from pansim.modules import variant_flags

        had, gets = variant_flags(config["variant"]), variant_flags(variant)
        dropped = [name for name, a, b in zip(("PAN", "PGS"), had, gets, strict=True) if a > b]
        if dropped:
            raise GraftError(
                f"the source is a {config['variant']} model: variant {variant} would drop its "
                f"{' and '.join(dropped)} modules and change its predictions"
            )
        return {**config, **options, "variant": variant, "seed": int(seed)}
    return {**mace_architecture(source), **options, "variant": variant, "seed": int(seed)}


def graft(
    source: str | os.PathLike | torch.nn.Module,
    variant: str = "pan+pgs",
    out: str | os.PathLike | None = None,
    *,
    trust_pickle: bool = False,
    module_options: dict[str, Any] | None = None,
    seed: int = 0,
    structures: list[tuple[str, Atoms]] | None = None,
) -> torch.nn.Module:
    """A pansim model of ``variant`` that predicts exactly what ``source`` predicts.

    Parameters
    ----------
    source : str, PathLike or torch.nn.Module
        A mace-torch model file (needs ``trust_pickle``), a pansim model file or
        registered name (``pansim models``), or a
        ``MACE`` / ``ScaleShiftMACE`` / pansim module (not changed).
    variant : str
        ``baseline``, ``pan``, ``pgs`` or ``pan+pgs``.
    out : str or PathLike, optional
        Where to write the pansim model (``.safetensors`` appended if missing); it is
        written only after the reloaded file passed :func:`check_identity`.
    trust_pickle : bool
        Allow unpickling a mace-torch file (this runs code from it).
    module_options : dict, optional
        PAN / PGS options (``pansim.modules.MODULE_DEFAULTS``), e.g. ``{"c_max": 8.0}``.
    seed : int
        Seed of the added modules' inner weights (they start as identities anyway).
    structures : list of (label, Atoms), optional
        Structures of the identity check (default: :func:`check_structures`).

    Returns
    -------
    torch.nn.Module
        The pansim model (the reloaded file if ``out`` is given), in eval mode;
        ``model.graft_report`` holds the provenance and the identity check.

    Raises
    ------
    GraftError
        For any problem with the source, or predictions that would change.
    """
    from pansim.backbones import VARIANTS

    if variant not in VARIANTS:
        raise GraftError(f"unknown variant {variant!r}; available: {list(VARIANTS)}")
    model, info = _source_model(source, trust_pickle)
    dtype = _model_dtype(model)
    config = _target_config(model, variant, seed, _check_module_options(module_options or {}))
    grafted = _build(config, dtype)
    if not hasattr(model, "pansim_config"):
        _check_same_structure(model, grafted)
    added = copy_weights(model, grafted)
    grafted.eval()
    report = {
        **info,
        "source_class": type(model).__name__,
        "variant": variant,
        "added_tensors": len(added),
    }
    if out is None:
        report["identity"] = check_identity(model, grafted, structures)
    else:  # the check runs on the file as reloaded, which is what gets written
        grafted = _write_checked(grafted, model, Path(out), report, structures)
    grafted.graft_report = report
    return grafted


def output_path(out: str | os.PathLike) -> Path:
    """``out`` with ``.safetensors`` appended if missing (as :func:`pansim.save_model` does)."""
    path = Path(out)
    return path if path.suffix == ".safetensors" else path.with_name(path.name + ".safetensors")


def _write_checked(
    grafted: torch.nn.Module,
    source: torch.nn.Module,
    out: Path,
    report: dict[str, Any],
    structures: list[tuple[str, Atoms]] | None,
) -> torch.nn.Module:
    """Save to a temporary file, reload, check identity again, then move into place."""
    from pansim.model_io import load_model, save_model

    out = output_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".graft-") as tmp:
        path = save_model(grafted, Path(tmp) / "model.safetensors", metadata={"graft": report})
        reloaded = load_model(path)
        report["identity"] = check_identity(source, reloaded, structures)
        os.replace(path, out)
    reloaded.pansim_metadata["path"] = str(out)
    return reloaded


# -- command line ---------------------------------------------------------------------------
def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``graft`` arguments."""
    from pansim.backbones import VARIANTS

    parser.description = (
        "Add PAN / PGS (zero-started) to a trained MACE: reads a mace-torch model file "
        "(MACE or ScaleShiftMACE; needs --trust-pickle) or a pansim model file, checks that "
        "the new model's energies, forces and stress equal the source's, writes a pansim "
        "model file (safetensors + JSON)."
    )
    parser.add_argument("source", help="mace-torch .model file or pansim .safetensors file")
    parser.add_argument("--variant", required=True, choices=VARIANTS, help="variant to build")
    parser.add_argument("--out", required=True, help="pansim model file to write")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow loading a mace-torch file, a Python pickle (this runs code from the file)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the added modules")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="PAN / PGS option of pansim.modules.MODULE_DEFAULTS, e.g. c_max=8 (repeatable)",
    )


def _parse_options(items: list[str]) -> dict[str, Any]:
    import yaml

    options = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise GraftError(f"--option {item!r}: expected KEY=VALUE")
        options[key.strip()] = yaml.safe_load(value)
    return options


def run(args: argparse.Namespace) -> int:
    """Graft; exit code 0 on success, 2 when the source cannot be grafted."""
    import sys

    try:
        model = graft(
            args.source,
            args.variant,
            args.out,
            trust_pickle=args.trust_pickle,
            module_options=_parse_options(args.option),
            seed=args.seed,
        )
    except GraftError as err:
        print(f"pansim graft: error: {err}", file=sys.stderr)
        return 2
    report = model.graft_report
    identity = report["identity"]
    print(f"source: {report['source']} ({report['source_class']}, {identity['dtype']})")
    for label, diffs in identity["max_abs_diff"].items():
        values = ", ".join(f"{k} {v:.2g}" for k, v in diffs.items())
        print(f"identity check, {label}: max |difference| {values}")
    print(f"wrote {model.pansim_metadata['path']} (variant {args.variant})")
    return 0
