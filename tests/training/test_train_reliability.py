"""Training output folders: a lock, an input fingerprint, damaged checkpoints, domain statistics."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pansim._lock import LOCK_NAME, FolderLockedError
from pansim.training.checkpoint import CheckpointError
from pansim.training.trainer import BEST_MODEL, CHECKPOINT, train


def _lock_file(folder: Path, pid: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    record = {"pid": pid, "host": socket.gethostname(), "command": "pansim train"}
    path.write_text(json.dumps(record))
    return path


def test_second_run_into_a_folder_in_use_is_refused(make_config):
    config = make_config(max_epochs=1)
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock_file(Path(config.out_dir), owner.pid)
        with pytest.raises(FolderLockedError, match=rf"in use by pansim train \(pid {owner.pid}"):
            train(config)
        assert not (Path(config.out_dir) / BEST_MODEL).exists()
    finally:
        owner.kill()
        owner.wait()


def test_stale_lock_of_a_killed_run_is_taken_over_and_released(make_config):
    config = make_config(max_epochs=1, test_file=None)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _lock_file(Path(config.out_dir), dead.pid)
    train(config)
    assert (Path(config.out_dir) / BEST_MODEL).exists()
    assert not (Path(config.out_dir) / LOCK_NAME).exists()


def test_fresh_run_with_other_inputs_into_a_finished_run_is_refused(make_config):
    first = make_config(max_epochs=1, test_file=None)
    train(first)
    out = Path(first.out_dir)
    (out / CHECKPOINT).unlink()  # even without the checkpoint the folder holds a run
    before = (out / BEST_MODEL).read_bytes()
    other = make_config(max_epochs=1, test_file=None, lr=1e-3)
    with pytest.raises(CheckpointError, match="holds a run with other inputs"):
        train(other)
    assert (out / BEST_MODEL).read_bytes() == before


def test_truncated_checkpoint_is_a_clear_error(make_config):
    config = make_config(max_epochs=1, test_file=None)
    train(config)
    path = Path(config.out_dir) / CHECKPOINT
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or damaged") as info:
        train(make_config(max_epochs=2, test_file=None), resume=True)
    assert "weights_only" not in str(info.value)


def test_best_model_carries_training_domain_statistics(make_config):
    config = make_config(max_epochs=1, test_file=None)
    train(config)
    from pansim.model_io import load_model

    domain = load_model(Path(config.out_dir) / BEST_MODEL).pansim_metadata["domain"]
    assert set(domain["elements"]) <= {"Cu", "Ag"} and domain["combinations"]
    assert domain["n_structures"] == 8
    assert domain["min_distance"]["*"] > 0.5
    assert all(lo <= hi for lo, hi in domain["coordination"].values())


def test_orphan_temporary_files_of_killed_writers_are_removed(tmp_path):
    from pansim._io import write_text_atomic

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f".metrics.json.{dead.pid}.0badc0de.tmp"
    orphan.write_text("half")
    mine = tmp_path / f".metrics.json.{os.getpid()}.0badc0de.tmp"
    mine.write_text("being written")
    write_text_atomic(tmp_path / "metrics.json", "{}")
    assert not orphan.exists() and mine.exists()


def test_checkpoint_is_fsynced_before_it_replaces_the_old_one(tmp_path, monkeypatch):
    import torch

    import pansim.training.checkpoint as ckpt

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(ckpt.os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(
        "pansim._io.os.replace", lambda a, b: events.append("replace") or real_replace(a, b)
    )
    ckpt.save_atomic({"w": torch.ones(3)}, tmp_path / "checkpoint.pt")
    assert events == ["fsync", "replace"]
    assert torch.equal(ckpt.load(tmp_path / "checkpoint.pt")["w"], torch.ones(3))


@pytest.mark.parametrize("finished", [True, False])
def test_fresh_run_of_the_same_config_never_overwrites_its_results(make_config, finished):
    """A clone keeps a run's results but not its checkpoint.pt (git-ignored): ``pansim
    train`` without ``--resume`` must not start that run again over them."""
    config = make_config(max_epochs=1, test_file=None)
    train(config)
    out = Path(config.out_dir)
    (out / CHECKPOINT).unlink()
    if not finished:
        (out / "summary.json").unlink()
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    match = "finished run of this config" if finished else "partial run of this config"
    with pytest.raises(CheckpointError, match=match):
        train(make_config(max_epochs=1, test_file=None))
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
