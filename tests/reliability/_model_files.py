"""Model files re-written with an edited config, metadata or tensors and a recomputed hash.

A recomputed hash is what someone editing the file on purpose would write: these
files pass the hash check, so only :mod:`pansim.model_checks` stands between
them and the model builder.
"""

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from pansim.model_io import FORMAT, FORMAT_VERSION, _content_hash


def read_parts(path: Path) -> tuple[dict, dict, dict[str, torch.Tensor]]:
    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata()
    return json.loads(header["config"]), json.loads(header["metadata"]), load_file(str(path))


def rewrite(src: Path, dst: Path, config=None, meta=None, tensors=None) -> Path:
    """Copy ``src`` to ``dst`` with the given parts replaced and a valid hash."""
    c0, m0, t0 = read_parts(src)
    c = json.dumps(c0 if config is None else config, sort_keys=True)
    m = json.dumps(m0 if meta is None else meta, sort_keys=True)
    t = t0 if tensors is None else tensors
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": c,
        "metadata": m,
        "sha256": _content_hash(c, m, t),
    }
    dst.write_bytes(save(t, metadata=header))
    return dst
