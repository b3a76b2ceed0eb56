"""The reference systems' datasets on disk (the systems: :mod:`pansim.data.systems`).

Layout of ``data/`` (``$PANSIM_DATA_DIR`` or ``--data-dir`` to move it)::

    data/<system>/manifest.json      every job: input, provenance, status, labels (source of truth)
    data/<system>/<system>.extxyz     all labelled configurations (regenerated atomically)
    data/<system>/{train,val,test}.extxyz   fixed splits of the same
    data/<system>/reference/          DFT reference properties (crystals, docs/spec.md §2.4)

The extended XYZ files are rebuilt from the manifest's finished entries after
every label, so a partial dataset is always complete and usable.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write

import pansim
from pansim.data.labelers import dict_to_atoms, job_hash
from pansim.data.manifest import Manifest, ManifestError, file_lock, write_text_atomic
from pansim.data.systems import SYSTEMS as ALL_SYSTEMS
from pansim.data.systems import System, data_dir  # noqa: F401 - the one spec type, re-exported

SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


#: name -> System of the systems with a dataset (a view of :data:`pansim.data.systems.SYSTEMS`);
#: the CLI reads its choices from here
SYSTEMS: dict[str, System] = {n: s for n, s in ALL_SYSTEMS.items() if s.has_dataset}


def get_system(name: str) -> System:
    """The system ``name`` with a dataset (case-insensitive)."""
    try:
        return SYSTEMS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown system {name!r}; known: {', '.join(SYSTEMS)}") from None


def manifest_path(system: str, root: str | Path | None = None) -> Path:
    """``data/<system>/manifest.json``."""
    return data_dir(root) / system / "manifest.json"


def _provenance(atoms: Atoms) -> dict:
    keep = {k: v for k, v in atoms.info.items() if isinstance(v, (str, int, float, bool, list))}
    return {**keep, "sampled_by": f"pansim {pansim.__version__}"}


def sample(
    system: str, n: int | None = None, seed: int = 0, root: str | Path | None = None, start: int = 0
) -> int:
    """Queue configurations ``start .. start+n-1`` of ``system`` in its manifest.

    Returns the number of new jobs; already queued ones are left as they are
    (same content, or labelled by an earlier sampler version) or rejected (a
    different unlabelled structure under the same id: the sampler changed; see
    :func:`refresh_pending`).
    """
    sys_ = get_system(system)
    atoms_list = sys_.sampler(n or sys_.default_n, seed, start)
    added = 0
    with Manifest.update(manifest_path(sys_.name, root), _meta(sys_)) as m:
        for atoms in atoms_list:
            job, prov = sys_.make_job(atoms), _provenance(atoms)
            if _labelled_by_older_sampler(m.entries.get(prov["config_id"]), prov):
                continue  # a valid label of an earlier sampler version: kept as it is
            try:
                added += m.add(prov["config_id"], job, prov, job_hash(job))
            except ManifestError as exc:
                raise ManifestError(
                    f"{exc}: the sampler changed since it was queued; "
                    f"`pansim data sample {sys_.name} --refresh-pending` redraws the "
                    "configurations not labelled yet (labelled ones are kept)"
                ) from None
    return added


#: what :func:`refresh_pending` did to each configuration
REFRESH_COUNTS = (
    "added",
    "redrawn",
    "provenance_updated",
    "unchanged",
    "kept_done",
    "kept_done_older_sampler",
)


def _labelled_by_older_sampler(entry: dict | None, prov: dict) -> bool:
    """True for a finished entry drawn by another sampler version than ``prov`` records."""
    if entry is None or entry["status"] != "done":
        return False
    return entry["provenance"].get("sampler_version", 1) != prov.get("sampler_version", 1)


def _meta(sys_: System) -> dict:
    return {"system": sys_.name, "kind": sys_.kind, "elements": list(sys_.elements)}


def _refresh_entry(m: Manifest, key: str, job: dict, prov: dict, counts: dict) -> None:
    """Bring one queued entry to the current sampler; a labelled one is never touched."""
    old, new_hash = m.entries.get(key), job_hash(job)
    if old is None:
        m.add(key, job, prov, new_hash)
        counts["added"] += 1
        return
    if old["status"] == "done":
        older = old["hash"] != new_hash and _labelled_by_older_sampler(old, prov)
        counts["kept_done_older_sampler" if older else "kept_done"] += 1
        return
    if old["hash"] != new_hash:  # pending, or failed on a structure no longer drawn
        prov = {
            **prov,
            "redrawn_from_hash": old["hash"],
            "redrawn_from_status": old["status"],
            "redrawn_from_sampler_version": old["provenance"].get("sampler_version", 1),
        }
        m.entries[key] = {"status": "pending", "hash": new_hash, "job": job, "provenance": prov}
        counts["redrawn"] += 1
        return
    redrawn = {k: v for k, v in old["provenance"].items() if k.startswith("redrawn_from_")}
    if old["status"] == "pending" and old["provenance"] != {**prov, **redrawn}:
        old["provenance"] = {**prov, **redrawn}
        counts["provenance_updated"] += 1
    else:
        counts["unchanged"] += 1


def refresh_pending(
    system: str,
    n: int | None = None,
    seed: int = 0,
    root: str | Path | None = None,
    start: int = 0,
) -> dict[str, int]:
    """Redraw the not-yet-labelled configurations of a crystal with the current sampler.

    For configurations ``start .. start+n-1`` (default: up to the largest index
    the manifest holds for ``seed``, or the system's default count if it holds none):

    - a ``done`` entry is never touched, even if the current sampler draws another
      structure: its label is valid and its provenance records the sampler that
      drew it;
    - a ``pending`` entry whose structure changed is replaced by the new one (its
      provenance gets ``redrawn_from_hash``, ``redrawn_from_status`` and
      ``redrawn_from_sampler_version``); an unchanged one gets the new provenance;
    - a ``failed`` entry is redrawn only if its structure changed (its failure
      belongs to a structure no longer drawn);
    - missing ones are added.

    The manifest is rewritten once, atomically.

    Runs under the data folder's labelling lock (``.label.lock``), so it refuses to
    run while a labeller is running: a job replaced under a running labeller could
    get the label of the structure that labeller was given.

    Returns counts: ``added``, ``redrawn``, ``provenance_updated``, ``unchanged``,
    ``kept_done``, ``kept_done_older_sampler``.
    """
    sys_ = get_system(system)
    if sys_.kind != "crystal":
        raise ValueError(f"{sys_.name}: only crystal samplers are versioned; nothing to refresh")
    path = manifest_path(sys_.name, root)
    counts = dict.fromkeys(REFRESH_COUNTS, 0)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(file_lock(data_dir(root) / ".label.lock", timeout=0))
        except ManifestError:
            raise ManifestError(
                f"a labeller is running on {data_dir(root)} (it holds .label.lock); stop it "
                "first: a pending job replaced under it could receive another structure's label"
            ) from None
        if n is None:
            n = (_next_index(Manifest.open(path), seed) or sys_.default_n) - start
        atoms_list = sys_.sampler(n, seed, start)
        with Manifest.update(path, _meta(sys_)) as m:
            for atoms in atoms_list:
                job = sys_.make_job(atoms)
                _refresh_entry(m, atoms.info["config_id"], job, _provenance(atoms), counts)
    return counts


def _next_index(m: Manifest, seed: int) -> int:
    """One past the largest configuration index of ``seed`` in ``m`` (0 when none)."""
    provs = [e["provenance"] for e in m.entries.values()]
    return max((p.get("index", -1) for p in provs if p.get("seed") == seed), default=-1) + 1


#: consecutive units (configurations or trajectory blocks) per stratum of the splits
SPLIT_GROUP = 10


def _unit_hash(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 16**8


def split_of(unit: str, seed: str = "pansim-splits-v2") -> str:
    """Fixed split of a unit (configuration id or trajectory block): a hash, not a position.

    Units ending in a number ``k`` (``si:si-s0-0042``, ``ethanol:s0-b7``) are
    stratified: among the ``SPLIT_GROUP`` units ``10 g .. 10 g + 9`` of the same
    prefix, the one ranked first by hash is ``test``, the second ``val``, the other
    eight ``train`` (exactly 80/10/10 per group, so a small data set cannot end up
    with, say, one validation block in seventy by chance). The rank depends only on
    the group's unit names, so a unit keeps its split however many others are
    labelled later. Other units get an 80/10/10 hash split.
    """
    match = re.fullmatch(r"(.*?)(\d+)", unit)
    if match is None:
        u, edge = _unit_hash(f"{seed}:{unit}"), 0.0
        for name, frac in SPLIT_FRACTIONS.items():
            edge += frac
            if u < edge:
                return name
        return "test"
    prefix, k = match.group(1), int(match.group(2))
    first = k - k % SPLIT_GROUP
    members = range(first, first + SPLIT_GROUP)
    order = sorted(members, key=lambda j: _unit_hash(f"{seed}:{prefix}{j}"))
    return {0: "test", 1: "val"}.get(order.index(k), "train")


def labelled_atoms(entry: dict, key: str, split_unit: str = "config_id") -> Atoms:
    """One finished manifest entry as Atoms with ``REF_*`` labels and provenance in ``info``."""
    job, res, prov = entry["job"], entry["result"], entry["provenance"]
    atoms = dict_to_atoms(job["atoms"])
    atoms.info["REF_energy"] = float(res["energy"])
    atoms.arrays["REF_forces"] = np.asarray(res["forces"], dtype=float)
    if "stress" in res:
        atoms.info["REF_stress"] = np.asarray(res["stress"], dtype=float).reshape(3, 3)
    for k, v in prov.items():
        atoms.info[k] = json.dumps(v) if isinstance(v, list) else v
    atoms.info.update(
        config_id=key,
        code=res.get("code", job["code"]),
        code_version=res.get("version", "?"),
        settings=json.dumps(job["calc"], sort_keys=True),
        content_hash=entry["hash"],
        label_seconds=round(float(res.get("seconds", 0.0)), 1),
    )
    atoms.info["split"] = split_of(f"{prov.get('system', '')}:{prov.get(split_unit, key)}")
    return atoms


def _extxyz_text(frames: list[Atoms]) -> str:
    buf = io.StringIO()
    if frames:
        write(buf, frames, format="extxyz")
    return buf.getvalue()


def export(system: str, root: str | Path | None = None) -> dict[str, int]:
    """Rewrite ``<system>.extxyz`` and ``train/val/test.extxyz`` from the finished entries.

    Returns the number of configurations per file; each file is replaced atomically.
    """
    sys_ = get_system(system)
    m = Manifest.load(manifest_path(sys_.name, root))
    frames = [labelled_atoms(m.entries[k], k, sys_.split_unit) for k in m.done()]
    out = data_dir(root) / sys_.name
    counts = {sys_.name: len(frames)}
    write_text_atomic(out / f"{sys_.name}.extxyz", _extxyz_text(frames))
    for split in SPLIT_FRACTIONS:
        part = [a for a in frames if a.info["split"] == split]
        write_text_atomic(out / f"{split}.extxyz", _extxyz_text(part))
        counts[split] = len(part)
    return counts
