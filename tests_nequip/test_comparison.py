"""The comparison driver: dry run, metrics, FLOPs at the configs' sizes, resuming a run."""

import csv

import numpy as np
import pytest
from ase.build import bulk
from pansim_nequip import comparison

from _data import emt_frames, write_emt_dataset

REPO = comparison.Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working directory with the repository's configs and a small si data set."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "nequip").symlink_to(REPO / "configs" / "nequip")
    write_emt_dataset(tmp_path / "data" / "si", sizes=(3, 2, 2))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_plan_is_a_dry_run_that_prints_data_and_commands(project, capsys):
    argv = ["plan", "--systems", "si", "ethanol", "--backbones", "nequip", "--seeds", "0"]
    assert comparison.main([*argv, "--", "max_epochs=1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "ok       data/si/train.extxyz: 3 frames" in out
    assert "missing  data/ethanol/val.extxyz" in out
    commands = [line for line in out if line.startswith("todo")]
    assert len(commands) == 4  # 2 systems x 1 backbone x 2 variants x 1 seed
    assert commands[1].endswith(
        "-cn si-nequip variant=pan+pgs seed=0 hydra.run.dir=results/nequip/si/nequip-pan+pgs-seed0 "
        "max_epochs=1"
    )
    assert not (project / "runs").exists()


def test_metrics_are_pansims():
    frames = emt_frames(3, seed=7)
    preds = [
        {
            "energy": a.info["REF_energy"] + 0.01 * len(a),
            "forces": a.arrays["REF_forces"] + 0.002,
            "stress": a.info["REF_stress"],
        }
        for a in frames
    ]
    result = comparison.metrics(frames, preds)
    assert result["energy_per_atom"]["mae"] == pytest.approx(10.0)  # meV/atom
    assert result["forces"]["rmse"] == pytest.approx(2.0)  # meV/A
    assert result["stress"]["mae"] == pytest.approx(0.0)
    assert result["n_stress"] == 3 and "forces_per_element" in result


@pytest.mark.parametrize("backbone", ["nequip", "allegro"])
def test_flops_overhead_at_config_sizes(backbone, monkeypatch):
    """docs/spec.md §1.3, invariant 5, at the sizes of configs/nequip (the driver's counter)."""
    monkeypatch.chdir(REPO)  # the driver reads configs/nequip from the working directory
    atoms = bulk("Si", "diamond", a=5.47, cubic=True)
    atoms.rattle(0.05, seed=0)
    rows = comparison.measure("si", backbone, ["baseline", "pan+pgs"], atoms, repeats=1)
    ratio = rows[1]["flops_ratio"]
    assert np.isfinite(ratio) and 1.0 < ratio <= 1.05, ratio


TINY_RUN = ["num_features=8", "num_layers=2", "cutoff_radius=4.0", "model_type_names=[Cu]"]


def test_interrupted_run_continues_from_last_checkpoint(project):
    job = comparison.Job("si", "nequip", "baseline", 0)
    comparison.train(job, [*TINY_RUN, "max_epochs=1"])
    # simulate a run killed after its first epoch: no done.json, an open segment
    (job.out_dir / "done.json").unlink()
    segments = comparison.json.loads((job.out_dir / "segments.json").read_text())
    del segments[-1]["end"]
    (job.out_dir / "segments.json").write_text(comparison.json.dumps(segments))
    last = job.out_dir / "last.ckpt"
    assert comparison.resume_checkpoint(job) == last

    comparison.train(job, [*TINY_RUN, "max_epochs=2"])
    segments = comparison.json.loads((job.out_dir / "segments.json").read_text())
    assert [s["resumed_from"] for s in segments] == [None, str(last)]
    # the killed segment is closed at its last checkpoint's time
    assert segments[0]["start"] < segments[0]["end"] <= segments[1]["start"]
    done = comparison.json.loads((job.out_dir / "done.json").read_text())
    assert done["segments"] == 2 and done["epochs"] == 2
    assert done["train_seconds"] == pytest.approx(sum(s["end"] - s["start"] for s in segments))
    # the second segment trained epoch 1 only: nequip restored the epoch counter
    trained = {}
    for path in sorted((job.out_dir / "log").glob("version_*/metrics.csv")):
        rows = csv.DictReader(path.open())
        key = "train_loss_epoch/forces_mse"
        trained[path.parent.name] = {int(r["epoch"]) for r in rows if r.get(key)}
    assert trained == {"version_0": {0}, "version_1": {1}}


def test_corrupt_last_checkpoint_starts_over(project, capsys):
    job = comparison.Job("si", "nequip", "baseline", 0)
    job.out_dir.mkdir(parents=True)
    (job.out_dir / "last.ckpt").write_bytes(b"not a checkpoint")
    assert comparison.resume_checkpoint(job) is None
    assert (job.out_dir / "last.ckpt.corrupt").exists()
    assert not (job.out_dir / "last.ckpt").exists()
    assert "starting the run over" in capsys.readouterr().out


def test_run_skips_a_system_whose_data_is_still_being_labelled(project, monkeypatch, capsys):
    from pansim.data.manifest import Manifest

    manifest = Manifest(project / "data" / "si" / "manifest.json")
    manifest.add("a", {"code": "gpaw"}, {}, "a")
    manifest.save()
    trained = []
    monkeypatch.setattr(comparison, "train", lambda job, overrides=(): trained.append(job))
    argv = ["run", "--systems", "si", "--backbones", "nequip", "--seeds", "0"]
    assert comparison.main(argv) == 0 and trained == []
    assert "skipping si: data/si/manifest.json has 1 configurations still to label" in (
        capsys.readouterr().err
    )
    assert comparison.main([*argv, "--allow-incomplete-data"]) == 0 and len(trained) == 2
