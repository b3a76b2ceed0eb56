"""Safe model files: one safetensors file holding a JSON header and the weights.

Format (``FORMAT = "pansim-model"``, ``FORMAT_VERSION = 1``)
--------------------------------------------------------------
A single ``.safetensors`` file (https://github.com/huggingface/safetensors):
the tensors are the model's ``state_dict``; the file's string metadata holds

- ``format``, ``format_version``;
- ``config``: JSON of ``model.pansim_config`` (the :func:`pansim.build_model`
  keyword arguments that rebuild the architecture);
- ``metadata``: JSON with the versions of pansim, mace-torch, torch and e3nn,
  elements, cutoff (Angstrom), variant, backbone, dtype, creation time, the
  caller's metadata (e.g. training provenance) under ``provenance``, and
  ``domain``, the training-data statistics of ``model.pansim_domain`` when
  set (see :mod:`pansim.domain`);
- ``sha256``: a hash of the config, the metadata and every tensor (name,
  dtype, shape, bytes), checked on load. The hash catches *accidents*
  (truncated downloads, flipped bits, a header edited by hand); it does not
  protect against *tampering*: anyone who changes the file can recompute it.
  Hostile content is kept harmless by the format (no code runs) and by
  :mod:`pansim.model_checks` (bounded sizes, weights that fit the config,
  finite weights of the declared dtype), checked before the model is built.

Loading parses JSON and raw tensor bytes only; nothing executes code. Writing
is atomic (temporary file in the same folder, then ``os.replace``). Any
problem on load raises :class:`ModelFileError` naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from pansim._io import write_text_atomic
from pansim.precision import DTYPES
from pansim.provenance import versions as _versions

FORMAT = "pansim-model"
FORMAT_VERSION = 1
_DTYPES = DTYPES


class ModelFileError(ValueError):
    """A model file that cannot be loaded: corrupt, truncated, out of bounds or incompatible."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        super().__init__(f"model file {os.fspath(path)!r}: {problem}")
        self.path = os.fspath(path)
        self.problem = problem


def versions() -> dict[str, str]:
    """Versions of Python, pansim, torch, mace-torch and e3nn (:mod:`pansim.provenance`)."""
    return _versions(("pansim", "torch", "mace-torch", "e3nn"))


def _content_hash(config: str, meta: str, tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for text in (config, meta):
        h.update(text.encode())
        h.update(b"\0")
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\0".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _model_dtype(model: torch.nn.Module) -> str:
    dtypes = {p.dtype for p in model.parameters()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in _DTYPES.values():
        raise ValueError(f"model parameters must share one of float32/float64, got {dtypes}")
    return {v: k for k, v in _DTYPES.items()}[next(iter(dtypes))]


def _header(model: torch.nn.Module, metadata: dict[str, Any] | None) -> tuple[str, str]:
    config = getattr(model, "pansim_config", None)
    if not config:
        raise ValueError("model has no pansim_config; build it with pansim.build_model")
    meta = {
        "versions": versions(),
        "backbone": config.get("backbone"),
        "variant": config.get("variant"),
        "elements": config.get("elements"),
        "r_max": config.get("r_max"),
        "dtype": _model_dtype(model),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "provenance": metadata or {},
    }
    domain = getattr(model, "pansim_domain", None)
    if domain:  # training-data statistics for out-of-domain warnings (pansim.domain)
        meta["domain"] = domain
    try:
        return json.dumps(config, sort_keys=True), json.dumps(meta, sort_keys=True)
    except TypeError as err:
        raise ValueError(f"config and metadata must be JSON-serialisable: {err}") from err


#: buffers the architecture rebuilds exactly from the config (MACE's symmetric-contraction
#: coupling tensors, ~90 % of a small model's numbers): not written, taken from the model on load
DERIVED_BUFFERS = re.compile(r"(^|\.)U_matrix_\d+$")


def save_model(
    model: torch.nn.Module, path: str | os.PathLike, metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` (weights + config + provenance) to one safetensors file, atomically.

    Parameters
    ----------
    model : torch.nn.Module
        A pansim model (has ``pansim_config``).
    path : str or PathLike
        Destination; ``.safetensors`` is appended if the suffix is missing.
    metadata : dict, optional
        JSON-serialisable provenance (training config, data hashes, ...).

    Returns
    -------
    Path
        The file written.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    config, meta = _header(model, metadata)
    tensors = {
        k: v.detach().cpu().contiguous().clone()
        for k, v in model.state_dict().items()
        if not DERIVED_BUFFERS.search(k)
    }
    return write_model_file(path, config, meta, tensors)


def write_model_file(
    path: str | os.PathLike, config: str, meta: str, tensors: dict[str, torch.Tensor]
) -> Path:
    """Write a model file from its JSON ``config`` and ``meta`` strings and its tensors.

    The header carries the format, its version and the content hash that
    :func:`read_model_file` checks; the file is replaced atomically.
    """
    from safetensors.torch import save

    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": config,
        "metadata": meta,
        "sha256": _content_hash(config, meta, tensors),
    }
    # serialised here and written by Python: safetensors' save_file creates 0600 files
    write_text_atomic(path, save(tensors, metadata=header))
    return Path(path)


def read_model_file(path: str | os.PathLike) -> tuple[dict, dict, dict[str, torch.Tensor]]:
    """Config, metadata and tensors of a model file, all checked.

    Raises
    ------
    ModelFileError
        Missing, unreadable, truncated or corrupt file, wrong format or
        version, missing keys, or a content-hash mismatch.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "no such file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelFileError(path, f"not a readable safetensors file ({err})") from err
    _check_header(path, header)
    if _content_hash(header["config"], header["metadata"], tensors) != header["sha256"]:
        raise ModelFileError(path, "content hash mismatch: the file was modified or corrupted")
    return json.loads(header["config"]), json.loads(header["metadata"]), tensors


def _check_header(path: Path, header: dict[str, str]) -> None:
    if header.get("format") != FORMAT:
        raise ModelFileError(path, f"not a pansim model file (format {header.get('format')!r})")
    if header.get("format_version") != str(FORMAT_VERSION):
        raise ModelFileError(
            path,
            f"format version {header.get('format_version')!r} is not supported "
            f"(this pansim reads version {FORMAT_VERSION})",
        )
    missing = [k for k in ("config", "metadata", "sha256") if k not in header]
    if missing:
        raise ModelFileError(path, f"header lacks {missing}")
    for key in ("config", "metadata"):
        try:
            json.loads(header[key])
        except json.JSONDecodeError as err:
            raise ModelFileError(path, f"header {key!r} is not valid JSON ({err})") from err


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Set torch's default dtype inside the block and restore it after."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def load_model(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype | None = None,
) -> torch.nn.Module:
    """Rebuild a model saved by :func:`save_model` (no code is executed from the file).

    Parameters
    ----------
    path : str or PathLike
        The model file.
    device : str or torch.device
        Where to put the model.
    dtype : str or torch.dtype, optional
        ``float32`` / ``float64``; default: the dtype it was saved in.

    Returns
    -------
    torch.nn.Module
        In eval mode; ``model.pansim_metadata`` holds the file's metadata.

    Raises
    ------
    ModelFileError
        For any problem with the file (see :func:`read_model_file`), an
        architecture the config cannot rebuild, or weights that do not fit it.
    """
    from pansim.backbones import build_model
    from pansim.model_checks import ModelBoundsError, check_model_file

    config, meta, tensors = read_model_file(path)
    try:  # bounded and consistent before anything is built
        check_model_file(config, meta, tensors)
    except ModelBoundsError as err:
        raise ModelFileError(path, str(err)) from None
    saved = _DTYPES.get(meta.get("dtype"), torch.float64)
    try:
        with default_dtype(saved):
            model = build_model(**config)
    except (TypeError, ValueError, KeyError) as err:
        raise ModelFileError(path, f"config cannot rebuild the model ({err})") from err
    _load_weights(path, model, tensors)
    model.pansim_metadata = meta
    target = _DTYPES[dtype] if isinstance(dtype, str) else (dtype or saved)
    return model.to(device=device, dtype=target).eval()


def _added_later(owners: dict[str, tuple[torch.nn.Module, str]], key: str) -> bool:
    """Whether ``key`` is a buffer that files written before it existed lack.

    Such buffers (a module's ``ADDED_BUFFERS``, e.g. the PGS calibration buffers)
    keep the freshly built model's value, which is what those files computed with.
    ``owners``: :func:`pansim.backbones.state_dict_owners` of the model.
    """
    owner, name = owners.get(key, (None, ""))
    return name in getattr(owner, "ADDED_BUFFERS", ())


def _load_weights(path, model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    from pansim.backbones import state_dict_owners

    state, owners = model.state_dict(), state_dict_owners(model)
    missing = sorted(
        k
        for k in set(state) - set(tensors)
        if not DERIVED_BUFFERS.search(k) and not _added_later(owners, k)
    )
    unexpected = sorted(set(tensors) - set(state))
    if missing or unexpected:
        raise ModelFileError(
            path, f"weights do not fit the architecture: missing {missing}, unexpected {unexpected}"
        )
    bad = [k for k in tensors if tuple(state[k].shape) != tuple(tensors[k].shape)]
    if bad:
        shapes = {k: (tuple(tensors[k].shape), tuple(state[k].shape)) for k in bad}
        raise ModelFileError(path, f"shape mismatch (file, model): {shapes}")
    dtypes = {
        k: (tensors[k].dtype, state[k].dtype) for k in tensors if tensors[k].dtype != state[k].dtype
    }
    if dtypes:
        raise ModelFileError(path, f"dtype mismatch (file, model): {dtypes}")
    model.load_state_dict({**state, **tensors}, strict=True)
