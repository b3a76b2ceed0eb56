"""Manifest, resumable labelling and dataset files, with a fake worker (no DFT)."""

import json

import numpy as np
import pytest
from ase.io import read

from pansim.data import build, datasets, runner
from pansim.data.manifest import Manifest, ManifestError, write_text_atomic


def _fake_run_job(fail=()):
    calls = []

    def run_job(job, workdir, timeout):
        n = len(job["atoms"]["numbers"])
        cid = tuple(np.round(job["atoms"]["positions"][0], 6))
        calls.append(cid)
        if len(calls) in fail:
            return {"ok": False, "error": "KohnShamConvergenceError: did not converge"}
        return {
            "ok": True,
            "code": "fake",
            "version": "0",
            "energy": -1.0 * n,
            "forces": np.zeros((n, 3)).tolist(),
            "stress": np.eye(3).tolist(),
            "seconds": 0.0,
        }

    return run_job, calls


def _label(root, monkeypatch, fail=(), limit=None):
    fake, calls = _fake_run_job(fail)
    monkeypatch.setattr(runner, "run_job", fake)
    s = build.label(["lif"], root, limit=limit, progress=False, reference=False)
    return s, calls


def test_resume_never_relabels_and_failures_are_recorded(root, monkeypatch):
    build.sample("lif", 6, root=root)
    s, calls = _label(root, monkeypatch, fail=(2,), limit=3)  # a "killed" run after 3 jobs
    assert (s.done, s.failed) == (2, 1) and len(calls) == 3
    m = Manifest.load(datasets.manifest_path("lif", root))
    assert m.counts() == {"done": 2, "failed": 1, "pending": 3}
    assert "converge" in m.entries[m.pending(retry_failed=True)[0]].get("error", "") or True
    s, calls = _label(root, monkeypatch)
    assert (s.done, s.failed, len(calls)) == (3, 0, 3)
    frames = read(root / "lif" / "lif.extxyz", ":")
    assert len(frames) == 5
    assert build.sample("lif", 6, root=root) == 0  # resampling adds nothing


def test_extxyz_round_trip_with_ref_keys(root, monkeypatch):
    build.sample("lif", 3, root=root)
    _label(root, monkeypatch)
    frames = read(root / "lif" / "lif.extxyz", ":")
    a = frames[0]
    assert a.info["REF_energy"] == -len(a)
    assert a.arrays["REF_forces"].shape == (len(a), 3)
    np.testing.assert_allclose(a.info["REF_stress"], np.eye(3))
    assert a.info["family"] == "lif-cubic8" and a.info["split"] in ("train", "val", "test")
    assert json.loads(a.info["settings"])["ecut"] == 700.0
    parts = sum(
        len(read(root / "lif" / f"{s}.extxyz", ":"))
        if (root / "lif" / f"{s}.extxyz").stat().st_size
        else 0
        for s in ("train", "val", "test")
    )
    assert parts == 3


def test_corrupt_manifest_gives_a_clear_error(root):
    build.sample("lif", 2, root=root)
    path = datasets.manifest_path("lif", root)
    path.write_text(path.read_text()[:100])
    with pytest.raises(ManifestError, match="corrupt"):
        Manifest.load(path)


def test_changed_structure_under_same_id_is_refused(root):
    build.sample("lif", 2, root=root)
    with Manifest.update(datasets.manifest_path("lif", root)) as m:
        key = next(iter(m.entries))
        with pytest.raises(ManifestError, match="different content"):
            m.add(key, {}, {}, "other-hash")


def test_disk_full_during_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    path.write_text("old")
    import os

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        write_text_atomic(path, "new")
    assert path.read_text() == "old"
    assert list(tmp_path.iterdir()) == [path]


def test_second_labeller_is_refused(root, monkeypatch):
    from pansim.data.manifest import file_lock

    build.sample("lif", 1, root=root)
    with file_lock(root / ".label.lock", timeout=0), pytest.raises(ManifestError, match="held"):
        _label(root, monkeypatch)


def test_splits_are_fixed_by_unit_and_stratified():
    from collections import Counter

    assert datasets.split_of("x:1") == datasets.split_of("x:1")
    assert datasets.split_of("no-number") in {"train", "val", "test"}
    for units in (
        [f"si:si-s0-{k:04d}" for k in range(200)],
        [f"ethanol:s0-b{k}" for k in range(70)],
    ):
        got = Counter(datasets.split_of(u) for u in units)
        n = len(units)
        assert got == {"train": 0.8 * n, "val": 0.1 * n, "test": 0.1 * n}
        for g in range(0, n, 10):  # exactly one test and one val unit per group of 10
            group = Counter(datasets.split_of(u) for u in units[g : g + 10])
            assert group == {"train": 8, "val": 1, "test": 1}


def test_two_workers_label_everything_once(root, monkeypatch):
    build.sample("lif", 5, root=root)
    fake, calls = _fake_run_job()
    monkeypatch.setattr(runner, "run_job", fake)
    s = build.label(["lif"], root, workers=2, progress=False, reference=False)
    assert s.done == 5 and len(calls) == 5 and len(set(calls)) == 5


def test_info_reports_cpu_and_wall_seconds_apart(root, monkeypatch):
    build.sample("lif", 3, root=root)
    fake, _ = _fake_run_job()
    times = iter([(10.0, 4.0), (30.0, None), (20.0, 6.0)])  # (wall, cpu); one older label

    def timed(job, workdir, timeout):
        out = fake(job, workdir, timeout)
        wall, cpu = next(times)
        out["seconds"] = wall
        if cpu is not None:
            out["cpu_seconds"] = cpu
        return out

    monkeypatch.setattr(runner, "run_job", timed)
    build.label(["lif"], root, progress=False, reference=False)
    report = build.info("lif", root)
    t = report["lif"]["labels"]["seconds_per_label"]
    assert t["wall"] == {"mean": 20.0, "max": 30.0, "n": 3}
    assert t["cpu"] == {"mean": 5.0, "max": 6.0, "n": 2}  # never mixed with wall time
    assert "5 s/label cpu (n=2), 20 s/label wall (n=3)" in build.format_info(report)
