"""Provenance of a number: the software versions and the model behind it.

Model files, workflow results and benchmark records all store
:func:`versions`, read from the installed distributions' metadata (nothing is
imported, so asking costs no import of torch or mace).

:func:`model_provenance` (name, file, sha256, variant, backbone, dtype) is what
:class:`pansim.PANCalculator` adds to ``calc.parameters`` (so to ``calc.todict()``
and to every ASE trajectory it writes); :func:`calculator_provenance` is what every
``result.json`` stores. Only plain strings are kept, so the block is JSON- and
trajectory-ready.
"""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Iterable
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

#: the distributions whose versions results depend on (pip names)
PACKAGES = (
    "pansim",
    "torch",
    "mace-torch",
    "e3nn",
    "numpy",
    "scipy",
    "ase",
    "phonopy",
    "matscipy",
    "vesin",
)


def versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """``{"python": ..., package: version}``; ``"not installed"`` for a missing package."""
    out = {"python": platform.python_version()}
    for name in packages:
        if name == "pansim":  # the running source, installed or not
            from pansim import __version__

            out[name] = __version__
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


#: keys of the provenance block, in the order they are written
KEYS = ("model_name", "model_file", "model_sha256", "variant", "backbone", "dtype")


@lru_cache(maxsize=32)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file's bytes (cached per path, size and modification time)."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of the bytes of ``path``."""
    st = os.stat(path)
    return _file_sha256(os.fspath(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def model_provenance(source: Any, module: Any, dtype: str) -> dict[str, str]:
    """Provenance of a model given as ``source`` (name, path or module) and loaded as ``module``.

    Parameters
    ----------
    source : str, PathLike or torch.nn.Module
        What the user passed (a registered name, a model file or a module).
    module : torch.nn.Module
        The loaded model (``pansim_metadata`` is read when present).
    dtype : str
        The precision the calculator runs in.

    Returns
    -------
    dict of str
        ``model_name``, ``model_file`` (absolute path, ``""`` for an in-memory
        module), ``model_sha256`` (of the file's bytes), ``variant``,
        ``backbone`` and ``dtype``.
    """
    meta = getattr(module, "pansim_metadata", None) or {}
    out = dict.fromkeys(KEYS, "")
    out["dtype"] = str(dtype)
    out["variant"] = str(meta.get("variant", "") or "")
    out["backbone"] = str(meta.get("backbone", "") or "")
    if isinstance(source, (str, os.PathLike)):
        from pansim.pretrained import list_models, model_file

        path = model_file(source)
        name = str(source)
        out["model_name"] = name if name in list_models() else Path(name).stem
        out["model_file"] = str(Path(path).resolve())
        out["model_sha256"] = file_sha256(path)
    else:
        out["model_name"] = f"<in-memory {type(source).__name__}>"
    return out


def calculator_provenance(calc: Any) -> dict[str, str]:
    """The provenance block of any ASE calculator (pansim's, or e.g. EMT named by class)."""
    params = getattr(calc, "parameters", None) or {}
    if all(k in params for k in KEYS):
        return {k: str(params[k]) for k in KEYS}
    out = dict.fromkeys(KEYS, "")
    out["model_name"] = type(calc).__name__
    out["backbone"] = f"{type(calc).__module__}.{type(calc).__name__}"
    return out
