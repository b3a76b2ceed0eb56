"""Merge the labels of ``pansim learn`` with the data set they grow (``pansim learn --merge``).

The original splits are never rewritten (their hashes identify the runs trained on
them). The merged data set is written next to them, by default into
``<data folder>/grown/`` (the data folder is the one holding ``validation_file``):

- ``train.extxyz`` = original training split + the labels' ``train`` split;
- ``val.extxyz`` = original validation split + the labels' ``val`` split;
- ``test.extxyz`` = the original test split, unchanged (errors stay comparable);
- ``test_active.extxyz`` = the labels' held-out ``test`` split (the "active" split);
- ``manifest.json``: the source files and their SHA-256, the counts per split and per
  sampling route, the labels left out and why, the command.

Labels that break an ionic system's stoichiometry (a single-ion vacancy of LiF, as the
explorer made before it removed neutral pairs) are left out and listed
(:func:`pansim.data.sampling.off_stoichiometry`): such a charged, open-shell cell is
not the physics of the rest of the data set.

Every label keeps its ``route``, ``route_params``, ``round`` and committee disagreement
in its ``info``, so the sampling route of each structure stays visible in the merged
files. Merging refuses while labels of the round are pending (the files would miss
them), unless asked to go ahead.
"""

from __future__ import annotations

import collections
import shutil
from pathlib import Path
from typing import Any

from pansim.data.manifest import GROWN_FORMAT
from pansim.data.sampling import off_stoichiometry
from pansim.files import atomic_path, write_json_atomic, write_text_atomic
from pansim.provenance import file_sha256
from workflows.learn.loop import export_labels, labels_manifest, read_frames

SPLITS = ("train", "val", "test")


class MergeError(ValueError):
    """The labels cannot be merged yet (the message says why)."""


def sources(cfg: dict[str, Any]) -> dict[str, Path]:
    """The original splits (``train``, ``val``, ``test``) of the data set the labels grow."""
    folder = Path(cfg["validation_file"]).parent
    train = cfg["retrain"].get("train_file") or folder / "train.extxyz"
    val = Path(cfg["validation_file"])
    return {"train": Path(train), "val": val, "test": folder / "test.extxyz"}


def merge(
    cfg: dict[str, Any],
    dest: str | Path | None = None,
    allow_pending: bool = False,
    command: str = "pansim learn CONFIG --merge",
) -> dict[str, Any]:
    """Write the merged data set; returns its manifest (see the module docstring)."""
    from pansim.data.datasets import _extxyz_text
    from pansim.data.manifest import Manifest

    manifest = labels_manifest(cfg)
    if not manifest.exists():
        raise MergeError(f"no labels yet: {manifest} does not exist (run pansim learn first)")
    m = Manifest.load(manifest)
    pending = [k for k, e in m.entries.items() if e["status"] == "pending"]
    if pending and not allow_pending:
        raise MergeError(
            f"{len(pending)} labels are pending in {manifest} ({', '.join(sorted(pending)[:3])}"
            f"{', ...' if len(pending) > 3 else ''}): finish them with `pansim learn CONFIG "
            "--stop-after label`, or merge without them with --allow-pending"
        )
    export_labels(cfg)
    src = sources(cfg)
    for split in ("train", "val"):
        if not src[split].exists():
            raise MergeError(f"the {split} split {src[split]} does not exist")
    labels = Path(cfg["labels_dir"])
    new = {split: read_frames(labels / f"{split}.extxyz") for split in SPLITS}
    left_out = []
    for split, frames in new.items():
        kept = []
        for a in frames:
            why = off_stoichiometry(a, cfg["system"])
            if why is None:
                kept.append(a)
            else:
                left_out.append({"split": split, "route": str(a.info.get("route", "?")),
                                 "formula": a.get_chemical_formula(), "reason": why})  # fmt: skip
        new[split] = kept
    out = Path(dest) if dest is not None else src["val"].parent / "grown"
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}
    for split in ("train", "val"):
        old = read_frames(src[split])
        write_text_atomic(out / f"{split}.extxyz", _extxyz_text(old + new[split]))
        counts[split] = {"original": len(old), "added": len(new[split])}
    if src["test"].exists():
        with atomic_path(out / "test.extxyz") as tmp:
            shutil.copyfile(src["test"], tmp)
        counts["test"] = {"original": len(read_frames(src["test"])), "added": 0}
    write_text_atomic(out / "test_active.extxyz", _extxyz_text(new["test"]))
    counts["test_active"] = {"original": 0, "added": len(new["test"])}
    routes = {
        split: dict(collections.Counter(str(a.info.get("route", "?")) for a in frames))
        for split, frames in new.items()
    }
    record = {
        "format": GROWN_FORMAT,
        "system": cfg["system"],
        "sources": {
            **{
                f"original_{k}": {"path": str(p), "sha256": file_sha256(p)}
                for k, p in src.items()
                if p.exists()
            },  # fmt: skip
            "labels": {"path": str(manifest), "sha256": file_sha256(manifest)},
        },
        "counts": counts,
        "added_by_route": routes,
        "pending_left_out": len(pending),
        "left_out": left_out,
        "command": command,
    }
    write_json_atomic(out / "manifest.json", record)
    return record
