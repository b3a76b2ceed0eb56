"""Library face of ``pansim data``: sample, label, inspect, relabel.

Everything the CLI does is a call here, so scripts and tests use the same path.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from pansim.data import datasets
from pansim.data.datasets import (  # noqa: F401
    SYSTEMS,
    data_dir,
    export,
    get_system,
    manifest_path,
    refresh_pending,
    sample,
)
from pansim.data.labelers import run_job
from pansim.data.manifest import Manifest
from pansim.data.runner import Queue, RunSummary
from pansim.data.runner import label as _label


def scratch_dir() -> Path:
    """Where worker inputs and code logs go: ``$PANSIM_SCRATCH`` or ``~/.cache/pansim/jobs``."""
    return Path(os.environ.get("PANSIM_SCRATCH", Path.home() / ".cache" / "pansim" / "jobs"))


def queues(
    systems: list[str] | None = None,
    root=None,
    reference: bool = True,
    datasets: bool = True,
) -> list[Queue]:
    """Every queue with a manifest on disk: datasets, then reference-property job sets."""
    names = [get_system(s).name for s in systems] if systems else list(SYSTEMS)
    out = []
    for name in names:
        path = manifest_path(name, root)
        if datasets and path.exists():
            out.append(Queue(name, path, lambda n=name: export(n, root)))
    if reference:
        from pansim.data import reference as ref

        for name in names:
            path = ref.jobs_path(name, root)
            if path.exists():
                out.append(Queue(f"{name}-reference", path, lambda n=name: ref.analyse(n, root)))
    return out


def label(
    systems: list[str] | None = None,
    root=None,
    *,
    workers: int = 1,
    limit: int | None = None,
    retry_failed: bool = False,
    timeout: float = 4 * 3600,
    reference: bool = True,
    datasets: bool = True,
    progress: bool = True,
) -> RunSummary:
    """Label every pending job of ``systems`` (default: all), round-robin, resumable.

    ``reference=False`` skips the reference-property queues, ``datasets=False`` the
    dataset queues (e.g. ``pansim data label si lif ag --reference-only``).
    """
    if not (reference or datasets):
        raise ValueError("nothing to label: both datasets and reference queues are excluded")
    return _label(
        lambda: queues(systems, root, reference, datasets),
        lock_dir=data_dir(root),
        scratch=scratch_dir(),
        workers=workers,
        limit=limit,
        retry_failed=retry_failed,
        timeout=timeout,
        progress=progress,
    )


def queue_reference(system: str, root=None) -> int:
    """Queue the reference-property jobs (docs/spec.md §2.4) of a crystal; the number queued."""
    from pansim.data import reference as ref

    return ref.queue(system, root)


def _timings(done: list[dict]) -> dict:
    """Mean and max seconds per label, per clock, with the number of labels each covers.

    ``cpu`` is the worker's own CPU time (steady under machine load and pauses), recorded
    by newer workers only; ``wall`` is every label's wall time. The two are never mixed.
    """
    out = {}
    for clock, key in (("cpu", "cpu_seconds"), ("wall", "seconds")):
        secs = np.array([e["result"][key] for e in done if key in e["result"]])
        if secs.size:
            out[clock] = {"mean": float(secs.mean()), "max": float(secs.max()), "n": int(secs.size)}
    return out


def _label_stats(m: Manifest) -> dict:
    done = [m.entries[k] for k in m.done()]
    if not done:
        return {}
    natoms = np.array([len(e["job"]["atoms"]["numbers"]) for e in done])
    e_pa = np.array([e["result"]["energy"] for e in done]) / natoms
    f = np.concatenate([np.asarray(e["result"]["forces"]).reshape(-1) for e in done])
    stats = {
        "energy_per_atom_eV": {
            "min": float(e_pa.min()),
            "mean": float(e_pa.mean()),
            "max": float(e_pa.max()),
        },
        "force_component_eV_A": {
            "rms": float(np.sqrt(np.mean(f**2))),
            "max_abs": float(np.abs(f).max()),
        },
        "seconds_per_label": _timings(done),
    }
    if all("stress" in e["result"] for e in done):
        s = np.array([e["result"]["stress"] for e in done]).reshape(len(done), 9)
        stats["stress_eV_A3"] = {"max_abs": float(np.abs(s).max())}
    return stats


def info(system: str | None = None, root=None) -> dict:
    """Counts, elements, label statistics and provenance of one or every system on disk."""
    names = [get_system(system).name] if system else list(SYSTEMS)
    report = {}
    for name in names:
        path = manifest_path(name, root)
        if not path.exists():
            report[name] = {"status": "not sampled"}
            continue
        m = Manifest.load(path)
        done = [m.entries[k] for k in m.done()]
        splits = Counter(
            datasets.split_of(f"{name}:{e['provenance'].get(get_system(name).split_unit, k)}")
            for k, e in zip(m.done(), done, strict=True)
        )
        report[name] = {
            "counts": dict(m.counts()),
            "splits": dict(splits),
            "elements": sorted({s for e in m.entries.values() for s in _symbols(e)}),
            "routes": dict(Counter(e["provenance"].get("route", "?") for e in done)),
            "families": dict(Counter(e["provenance"].get("family", "-") for e in done)),
            "labels": _label_stats(m),
            "provenance": _provenance_summary(done),
            "failed": {
                k: e.get("error", "")[:200] for k, e in m.entries.items() if e["status"] == "failed"
            },
        }
        report[name].update(_reference_info(name, root))
    return report


def _symbols(entry: dict) -> set[str]:
    from ase.data import chemical_symbols

    return {chemical_symbols[z] for z in entry["job"]["atoms"]["numbers"]}


def _provenance_summary(done: list[dict]) -> dict:
    if not done:
        return {}
    codes = Counter(f"{e['result'].get('code')} {e['result'].get('version')}" for e in done)
    calc = dict(done[0]["job"]["calc"])
    calc.pop("kpts", None)
    kpts = Counter(
        "x".join(map(str, e["job"]["calc"]["kpts"])) for e in done if "kpts" in e["job"]["calc"]
    )
    return {"codes": dict(codes), "settings": calc, "kpts": dict(kpts)}


def _reference_info(name: str, root) -> dict:
    from pansim.data import reference as ref

    path = ref.jobs_path(name, root)
    if not path.exists():
        return {}
    return {
        "reference_jobs": dict(Manifest.load(path).counts()),
        "reference": ref.summary(name, root),
    }


def format_info(report: dict) -> str:
    """Human-readable :func:`info`."""
    lines = []
    for name, r in report.items():
        if "counts" not in r:
            lines.append(f"{name}: {r['status']}")
            continue
        c = r["counts"]
        lines.append(
            f"{name}: {c.get('done', 0)} labelled, {c.get('pending', 0)} pending, "
            f"{c.get('failed', 0)} failed; elements {r['elements']}; splits {r['splits']}"
        )
        if r["labels"]:
            lab = r["labels"]
            lines.append(
                f"  E/atom {lab['energy_per_atom_eV']['min']:.3f} .. "
                f"{lab['energy_per_atom_eV']['max']:.3f} eV,"
                f" |F| rms {lab['force_component_eV_A']['rms']:.3f} eV/A"
                + "".join(
                    f", {t['mean']:.0f} s/label {clock} (n={t['n']})"
                    for clock, t in lab["seconds_per_label"].items()
                )
            )
            lines.append(f"  routes {r['routes']}  families {r['families']}")
            lines.append(f"  provenance {r['provenance']}")
        for k, why in r["failed"].items():
            lines.append(f"  failed {k}: {why}")
        if "reference_jobs" in r:
            lines.append(f"  reference jobs {r['reference_jobs']}; results {r['reference']}")
    return "\n".join(lines)


def relabel(
    system: str,
    key: str,
    root=None,
    job_dir: str | Path | None = None,
    calc_overrides: dict | None = None,
) -> dict:
    """Rerun one stored configuration with its stored settings and compare with its labels.

    Returns ``{"dE_meV_per_atom", "dF_max_meV_A", "reproduced"}``; the spec tolerance is
    1 meV/atom and 5 meV/A. ``calc_overrides`` replaces keys of the stored calculator
    settings (e.g. a looser SCF criterion, to test whether it would reproduce the labels).
    The manifest is not changed.
    """
    m = Manifest.load(manifest_path(get_system(system).name, root))
    entry = m.entries.get(key)
    if entry is None or entry["status"] != "done":
        raise KeyError(f"{system}: {key!r} has no finished label")
    job = entry["job"]
    if calc_overrides:
        job = {**job, "calc": {**job["calc"], **calc_overrides}}
    new = run_job(job, job_dir or scratch_dir() / "relabel" / key)
    if not new.get("ok"):
        return {"config_id": key, "reproduced": False, "error": new.get("error")}
    n = len(entry["job"]["atoms"]["numbers"])
    de = abs(new["energy"] - entry["result"]["energy"]) / n * 1000
    df = float(np.abs(np.subtract(new["forces"], entry["result"]["forces"])).max()) * 1000
    return {
        "config_id": key,
        "dE_meV_per_atom": de,
        "dF_max_meV_A": df,
        "reproduced": bool(de <= 1.0 and df <= 5.0),
    }
