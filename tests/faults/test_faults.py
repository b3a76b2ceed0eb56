"""kill -9 during MD, its restart rewrite, save_model, labelling and training (issue 25).

After each kill: nothing finished is lost, nothing corrupt is read, no orphan
process or temporary file is left once the work is resumed.
"""

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _fault_tools import ROOT, pid_alive, temporary_files
from ase.io import Trajectory

SEEDS_SLOW = [pytest.param(s, marks=pytest.mark.slow) for s in (11, 12, 13)]


def _finish_md(folder: Path, steps: int):
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from workflows.md import run_md

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
    return run_md(atoms, EMT(), ensemble="nve", steps=steps, timestep_fs=2.0, temperature_K=300,
                  checkpoint_every=5, traj_every=5, seed=3, outdir=folder)  # fmt: skip


def test_kill_inside_the_md_restart_rewrite_keeps_every_frame(victim, tmp_path):
    first = victim("md", tmp_path, 20)
    assert first.wait() == 0
    frames = [a.positions.copy() for a in Trajectory(str(tmp_path / "md.traj"))]
    assert len(frames) == 5
    killed = victim("md-kill-in-rewrite", tmp_path, 2)
    assert killed.wait() == -9  # died inside the rewrite
    kept = list(Trajectory(str(tmp_path / "md.traj")))
    assert len(kept) == 5
    for a, b in zip(kept, frames, strict=True):
        np.testing.assert_array_equal(a.positions, b)
    result = _finish_md(tmp_path, 30)
    assert result.status == "completed" and result.restarted_from_step == 20
    assert len(Trajectory(str(tmp_path / "md.traj"))) == 7
    assert temporary_files(tmp_path) == []


@pytest.mark.parametrize("seed", [7, *SEEDS_SLOW])
def test_md_killed_at_a_random_point_resumes_to_the_uninterrupted_result(victim, tmp_path, seed):
    reference = _finish_md(tmp_path / "ref", 40)
    run = victim("md", tmp_path / "run", 40)
    run.wait_ready()
    run.kill_after(random.Random(seed).uniform(0.5, 3.0))
    result = _finish_md(tmp_path / "run", 40)
    assert result.status == "completed" and result.steps_done == 40
    np.testing.assert_allclose(result.etot_eV_per_atom, reference.etot_eV_per_atom, atol=1e-10)
    assert len(Trajectory(str(tmp_path / "run" / "md.traj"))) == 9
    assert len((tmp_path / "run" / "md.log").read_text().splitlines()) == 1 + 41
    assert temporary_files(tmp_path / "run") == []


@pytest.mark.parametrize("seed", [5, *SEEDS_SLOW])
def test_save_model_killed_at_a_random_point_leaves_a_loadable_file(victim, tmp_path, seed):
    from pansim.model_io import load_model, save_model

    saver = victim("save-model", tmp_path)
    saver.wait_ready()
    saver.kill_after(random.Random(seed).uniform(0.5, 2.5))
    path = tmp_path / "model.safetensors"
    if path.exists():  # killed after the first complete save: it must load
        model = load_model(path)
        save_model(model, path)  # the next write removes the killed writer's temporary file
    assert temporary_files(tmp_path) == []


def _worker_pid(folder: Path, timeout: float = 60.0) -> int:
    record = folder / "worker.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if record.exists():
            try:
                return int(json.loads(record.read_text())["pid"])
            except ValueError:
                pass
        time.sleep(0.05)
    raise AssertionError("the worker never started")


def test_killed_labeller_takes_its_worker_with_it(victim, tmp_path):
    labeller = victim("label", tmp_path)
    labeller.wait_ready()
    worker = _worker_pid(tmp_path)
    assert pid_alive(worker)
    labeller.kill_after(0.0)
    deadline = time.time() + 10
    while pid_alive(worker) and time.time() < deadline:
        time.sleep(0.05)
    assert not pid_alive(worker)


def test_rerun_of_a_job_stops_an_orphan_worker_instead_of_starting_a_second(tmp_path):
    import pansim.data.labelers as lab

    sleeper = Path(__file__).with_name("_sleeping_worker.py")
    inp, out = tmp_path / "input.json", tmp_path / "result.json"
    args = [sys.executable, str(sleeper), str(inp), str(out)]
    inp.write_text("{}")
    orphan = subprocess.Popen(args)  # as if its labeller had died without taking it along
    (tmp_path / lab.WORKER_RECORD).write_text(json.dumps({"pid": orphan.pid, "args": args}))
    cmdline = Path(f"/proc/{orphan.pid}/cmdline")
    for _ in range(200):  # on a loaded machine the child may not have exec'd python yet
        if cmdline.exists() and str(sleeper).encode() in cmdline.read_bytes():
            break
        time.sleep(0.05)
    try:
        assert lab.stop_orphan_worker(tmp_path) == orphan.pid
        assert orphan.wait(timeout=10) == -9
        assert not (tmp_path / lab.WORKER_RECORD).exists()
    finally:
        if orphan.poll() is None:
            orphan.kill()


def test_a_recorded_pid_running_something_else_is_never_killed(tmp_path):
    import pansim.data.labelers as lab

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        record = {"pid": other.pid, "args": ["python", "pyscf_worker.py", "in", "out"]}
        (tmp_path / lab.WORKER_RECORD).write_text(json.dumps(record))
        assert lab.stop_orphan_worker(tmp_path) is None
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_training_killed_at_a_random_point_resumes_and_finishes(victim, tmp_path, seed):
    from pansim._lock import LOCK_NAME
    from pansim.model_io import load_model

    folder = tmp_path / "run"
    run = victim("train", folder)
    run.wait_ready()
    run.kill_after(random.Random(seed).uniform(8.0, 25.0))
    again = victim("train", folder)
    assert again.wait() == 0, again.stderr()[-3000:]
    rows = json.loads((folder / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == list(range(6))
    load_model(folder / "best_model.safetensors")
    assert not (folder / LOCK_NAME).exists()
    assert temporary_files(folder) == []


@pytest.mark.slow
def test_two_trainings_into_one_folder_do_not_mix(victim, tmp_path):
    folder = tmp_path / "run"
    a, b = victim("train", folder), victim("train", folder)
    codes = sorted([a.wait(), b.wait()])
    errors = a.stderr() + b.stderr()
    assert codes[0] == 0 and codes[1] != 0
    assert "FolderLockedError" in errors or "exists: pass --resume" in errors


def test_victim_script_is_importable():
    assert (ROOT / "tests" / "faults" / "_victim.py").exists()
