"""``pansim learn`` on the tiny EMT case: config errors, two rounds end to end, resume."""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.io import read

from pansim.data.labelers import emt_job, run_job
from pansim.data.manifest import Manifest
from workflows.learn.config import LearnConfigError, load_config
from workflows.learn.loop import run
from workflows.learn.select import descriptor, farthest_points

sys.path.insert(0, str(Path(__file__).parent))
from tiny_case import make_case  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    """The tiny case after the first exploration, with a threshold at the median spread."""
    root = tmp_path_factory.mktemp("tiny")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        path = make_case(root)
        run(load_config(path.name), stop_after="explore", progress=False)
    finally:
        os.chdir(cwd)
    cands = read(root / "work" / "round-001" / "candidates.extxyz", ":")
    spread = [a.info["forces_std_max"] for a in cands]
    edit(root, select={"threshold": float(np.median(spread)), "max_per_round": 2})
    return root


def edit(root: Path, **changes) -> dict:
    """Change keys of ``root/learn.yaml`` (dicts merged one level deep)."""
    path = root / "learn.yaml"
    cfg = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(cfg))
    return cfg


@pytest.fixture()
def case(explored, tmp_path, monkeypatch):
    """A private copy of the explored case; the test runs inside it."""
    root = tmp_path / "case"
    shutil.copytree(explored, root)
    monkeypatch.chdir(root)
    return root


def test_emt_labeller_labels_and_fails_with_a_reason(tmp_path):
    atoms = bulk("Cu", "fcc", 3.61, cubic=True)
    ok = run_job(emt_job(atoms), tmp_path / "a")
    assert ok["ok"] and ok["code"] == "emt" and np.asarray(ok["stress"]).shape == (3, 3)
    bad = run_job(emt_job(atoms, fail_if_min_distance_below=10.0), tmp_path / "b")
    assert not bad["ok"] and "closest pair" in bad["error"]


def test_descriptor_and_farthest_points():
    a = bulk("Cu", "fcc", 3.61, cubic=True)
    a.rattle(0.1, seed=1)
    b = a[[3, 1, 0, 2]]
    np.testing.assert_allclose(descriptor(a), descriptor(b))
    x = np.array([[0.0], [0.1], [5.0], [5.05], [2.5]])
    assert farthest_points(x, 0, 3) == [0, 3, 4]


def _bad(tmp_path, **changes):
    for name in ("m0.safetensors", "m1.safetensors", "val.extxyz", "train.yaml"):
        (tmp_path / name).touch()
    cfg = {
        "system": "si",
        "committee": [str(tmp_path / "m0.safetensors"), str(tmp_path / "m1.safetensors")],
        "validation_file": str(tmp_path / "val.extxyz"),
        "explore": {"compress": {"volumes": [0.8]}},
        "select": {"threshold": 0.1},
        "retrain": {"config": str(tmp_path / "train.yaml")},
    }
    cfg.update(changes)
    return cfg


def _quota(min_per_route, max_per_round=24) -> dict:
    sel = {"threshold": 0.1, "max_per_round": max_per_round, "min_per_route": min_per_route}
    return {"select": sel}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"systm": "si"}, "unknown key 'systm'.*did you mean 'system'"),
        ({"system": "xx"}, "unknown system 'xx'"),
        ({"labeller": "vasp"}, "unknown labeller 'vasp'"),
        ({"labeller": "pyscf"}, "labels molecules; si is a crystal"),
        ({"committee": "xx-committee"}, "unknown committee 'xx-committee'"),
        ({"committee": ["nowhere.safetensors", "m.safetensors"]}, "not found"),
        ({"select": {"threshold": 0}}, "threshold must be > 0"),
        ({"select": {"treshold": 0.1}}, "did you mean 'threshold'"),
        ({"explore": {"md": [{"temperature_K": 300, "ensemble": "nvx"}]}}, "unknown ensemble"),
        ({"explore": {}}, "explore generates nothing"),
        ({"retrain": {"mode": "sometimes"}}, "retrain.mode"),
        ({"validation_file": "missing.extxyz"}, "does not exist"),
        (_quota({"contact": 2, "vacancy": 1}, 2), r"reserves 3 .*select.max_per_round=2"),
        (_quota({"contakt": 1}), "unknown route 'contakt'"),
        (_quota({"contact": -1}), r"min_per_route.contact must be .*>= 0, not -1"),
        (_quota({"md": 1.5}), r"min_per_route.md must be an integer >= 0, not 1.5"),
        (_quota(["contact"]), "min_per_route must be a mapping"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, changes, message):
    with pytest.raises(LearnConfigError, match=message):
        load_config(_bad(tmp_path, **changes))


def test_route_quota_config(tmp_path):
    assert load_config(_bad(tmp_path))["select"]["min_per_route"] == {}
    quota = {"vacancy": 1, "contact": 2}
    cfg = load_config(_bad(tmp_path, select={"threshold": 0.1, "min_per_route": quota}))
    assert cfg["select"]["min_per_route"] == quota and cfg["select"]["max_per_round"] == 24
    assert list(cfg["select"]["min_per_route"]) == ["vacancy", "contact"]  # order kept
    cfg = load_config(_bad(tmp_path, select={"threshold": 0.1, "min_per_route": None}))
    assert cfg["select"]["min_per_route"] == {}


def test_route_quota_is_selected_and_logged(case):
    """A contact quota in stage_select: picked first, recorded, shown in rounds.md."""
    edit(case, select={"min_per_route": {"contact": 1}})
    state = run(load_config("learn.yaml"), stop_after="select", progress=False)
    (rec,) = state["rounds"]
    assert rec["selected"] == 2 and rec["selected_by_quota"] == {"contact": 1}
    cands = read(case / "work" / "round-001" / "candidates.extxyz", ":")
    contact = max(a.info["forces_std_max"] for a in cands if a.info["route"] == "contact")
    m = Manifest.load(case / "work" / "labels" / "manifest.json")
    first = m.entries["cu-emt-al-r001-000"]["provenance"]
    assert first["route"] == "contact" and first["forces_std_max"] == pytest.approx(contact)
    assert len(m.entries) == 2
    assert "2 (1 by quota: contact 1)" in (case / "work" / "rounds.md").read_text()


def test_no_quota_records_an_empty_quota(case):
    state = run(load_config("learn.yaml"), stop_after="select", progress=False)
    assert state["rounds"][0]["selected_by_quota"] == {}
    assert "by quota" not in (case / "work" / "rounds.md").read_text()


def test_threshold_that_selects_nothing_or_everything(case):
    for threshold, what in ((1e3, "selects nothing"), (1e-9, "selects every one")):
        edit(case, select={"threshold": threshold})
        with pytest.raises(LearnConfigError, match=what):
            run(load_config("learn.yaml"), progress=False)
    state = json.loads((case / "work" / "state.json").read_text())
    assert state["stage"] == "select"  # nothing changed: fix the threshold and rerun


def test_two_rounds_end_to_end_with_an_interrupted_label(case, monkeypatch):
    """Two rounds; the run is interrupted after one label of round 2 and rerun."""
    import pansim.data.runner as runner

    calls = []
    real = runner.run_job

    def flaky(job, workdir, timeout):
        if len(calls) == 3:  # round 1: 2 labels; round 2: interrupted on its second
            raise KeyboardInterrupt
        calls.append(workdir)
        return real(job, workdir, timeout)

    monkeypatch.setattr(runner, "run_job", flaky)
    with pytest.raises(KeyboardInterrupt):
        run(load_config("learn.yaml"), progress=False)
    m = Manifest.load(case / "work" / "labels" / "manifest.json")
    before = {k: e["result"] for k, e in m.entries.items() if e["status"] == "done"}
    assert len(before) == 3
    monkeypatch.setattr(runner, "run_job", real)
    relabelled = []
    state = run(load_config("learn.yaml"), progress=False, log=relabelled.append)
    assert state["stopped"] == "max_rounds=2 done"
    assert not [line for line in relabelled if any(k in line for k in before)]
    m = Manifest.load(case / "work" / "labels" / "manifest.json")
    assert {k: m.entries[k]["result"] for k in before} == before
    rounds = [json.loads(x) for x in (case / "work" / "rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rounds] == [1, 2]
    for r in rounds:
        assert r["selected"] == r["labelled"] == 2 and r["failed"] == 0
        assert r["retrain"] == "warm" and r["validation"]["forces"]["rmse"] > 0
        assert r["max_disagreement"] > 0
    assert state["committee"][0].endswith("round-002/models/member-0/best_model.safetensors")
    assert "| 2 |" in (case / "work" / "rounds.md").read_text()
    labels = read(case / "work" / "labels" / "all.extxyz", ":")
    assert len(labels) == 4 and {a.info["route"] for a in labels} <= {
        "md", "compress", "contact", "vacancy"
    }  # fmt: skip
    assert all(a.info["sampler"] == "pansim-learn" for a in labels)


def test_failed_labels_are_recorded_and_the_loop_goes_on(case):
    edit(case, labeller_options={"fail_if_min_distance_below": 10.0}, stop={"max_rounds": 1})
    state = run(load_config("learn.yaml"), progress=False)
    (rec,) = state["rounds"]
    assert rec["failed"] == rec["selected"] == 2 and rec["labelled"] == 0
    assert all("closest pair" in why for why in rec["failures"].values())
    assert rec["status"] == "done" and state["stopped"] == "max_rounds=1 done"


def test_diverging_retrain_keeps_the_previous_models(case, monkeypatch):
    import pansim.training.trainer as trainer

    def diverge(*args, **kwargs):
        raise trainer.TrainingDiverged("loss is nan at step 3")

    monkeypatch.setattr(trainer, "train", diverge)
    edit(case, stop={"max_rounds": 1})
    before = json.loads((case / "work" / "state.json").read_text())["committee"]
    state = run(load_config("learn.yaml"), progress=False)
    (rec,) = state["rounds"]
    assert rec["retrain"].startswith("diverged") and "previous models kept" in rec["retrain"]
    assert state["committee"] == before


def test_stop_after_label_then_resume(case):
    from workflows.learn.loop import refresh_status

    edit(case, stop={"max_rounds": 1}, retrain={"mode": "none"})
    run(load_config("learn.yaml"), stop_after="select", progress=False)
    refresh_status(load_config("learn.yaml"))
    table = (case / "work" / "rounds.md").read_text()
    assert "0 (2 pending)" in table and "in progress (label)" in table
    state = run(load_config("learn.yaml"), stop_after="label", progress=False)
    assert state["stage"] == "retrain" and state["stopped"] is None
    assert len(read(case / "work" / "labels" / "all.extxyz", ":")) == 2
    state = run(load_config("learn.yaml"), progress=False)
    assert state["rounds"][0]["retrain"] == "skipped" and state["stopped"]


@pytest.mark.slow
def test_sigkill_mid_round_loses_no_label(case):
    """A real kill (SIGKILL) of ``pansim learn`` while it labels; the rerun finishes."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pansim", "learn", "learn.yaml", "--no-progress"]
    manifest = case / "work" / "labels" / "manifest.json"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    done = {}
    while time.time() < deadline and proc.poll() is None:
        if manifest.exists():
            m = Manifest.load(manifest)
            done = {k: e["result"] for k, e in m.entries.items() if e["status"] == "done"}
            if done:
                break
        time.sleep(0.2)
    assert done, "no label finished before the deadline"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    m = Manifest.load(manifest)
    assert {k: m.entries[k]["result"] for k in done} == done
    assert not [k for k in done if f"done   labels/{k}" in out.stdout + out.stderr]
    assert m.counts()["done"] == 4
    assert json.loads((case / "work" / "state.json").read_text())["stopped"]


def test_cli_bad_config_exit_code(tmp_path, capsys):
    from pansim.cli import main

    path = tmp_path / "learn.yaml"
    path.write_text(yaml.safe_dump(_bad(tmp_path, labeller="vasp")))
    assert main(["learn", str(path), "--no-progress"]) == 2
    assert "unknown labeller 'vasp'" in capsys.readouterr().err


def test_exploration_routes_do_what_they_say():
    import json as _json

    from workflows.learn.explore import compressed, contacts, vacancies

    base = bulk("Cu", "fcc", 3.61, cubic=True)
    rng = np.random.default_rng(0)
    (c,) = compressed(base, rng, [0.8], 1, 0.0)
    assert c.get_volume() == pytest.approx(0.8 * base.get_volume())
    (t,) = contacts(base, rng, 1, [0.7, 0.7])
    p = _json.loads(t.info["route_params"])
    d = t.get_distance(p["atom"], p["neighbour"], mic=True)
    assert d == pytest.approx(0.7 * 3.61 / np.sqrt(2), abs=0.06)  # 0.02 A rattle first
    (v,) = vacancies(base, rng, 1, 0.05)
    assert len(v) == len(base) - 1 and v.info["route"] == "vacancy"


def test_ionic_vacancies_are_neutral_schottky_pairs():
    """LiF: the explorer removes a Li-F pair, as the data sampler does (a lone ion would
    leave a charged, open-shell cell; round 1 of LiF had two, left out at merge)."""
    from ase.build import bulk

    from pansim.data.sampling import off_stoichiometry
    from workflows.learn.explore import vacancies

    base = bulk("LiF", "rocksalt", a=4.03, cubic=True)
    cells = vacancies(base, np.random.default_rng(3), 6, 0.05, "lif")
    assert all(len(c) == len(base) - 2 for c in cells)
    assert all(off_stoichiometry(c, "lif") is None for c in cells)
    lone = vacancies(base, np.random.default_rng(3), 1, 0.05)[0]  # no system: one atom
    assert "not LiF-stoichiometric" in off_stoichiometry(lone, "lif")


def test_merge_grows_the_data_without_touching_the_original_splits(case, capsys):
    from workflows.learn.cli import register
    from workflows.learn.cli import run as cli_run
    from workflows.learn.merge import MergeError, merge

    edit(case, stop={"max_rounds": 1}, retrain={"mode": "none"})
    cfg = load_config("learn.yaml")
    with pytest.raises(MergeError, match="no labels yet"):
        merge(cfg)
    run(cfg, stop_after="select", progress=False)
    with pytest.raises(MergeError, match="2 labels are pending"):
        merge(load_config("learn.yaml"))
    run(load_config("learn.yaml"), progress=False)
    before = {p: p.read_bytes() for p in case.glob("*.extxyz")}
    parser = argparse.ArgumentParser()
    register(parser)
    assert cli_run(parser.parse_args(["learn.yaml", "--merge", "--into", "grown"])) == 0
    assert "original" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in case.glob("*.extxyz")} == before  # originals untouched
    folder = case / "work" / "labels"
    labels = {
        s: read(folder / f"{s}.extxyz", ":") if (folder / f"{s}.extxyz").stat().st_size else []
        for s in ("train", "val", "test")
    }
    grown_train = read(case / "grown" / "train.extxyz", ":")
    assert len(grown_train) == 6 + len(labels["train"])
    assert len(read(case / "grown" / "val.extxyz", ":")) == 4 + len(labels["val"])
    record = json.loads((case / "grown" / "manifest.json").read_text())
    assert record["counts"]["train"] == {"original": 6, "added": len(labels["train"])}
    assert record["sources"]["original_val"]["path"] == "val.extxyz"
    assert record["command"] == "pansim learn learn.yaml --merge --into grown"
    assert sum(sum(r.values()) for r in record["added_by_route"].values()) == 2
    assert all("route" in a.info for a in grown_train[6:])
    # the training plans can train on the grown folder: it has no labels pending
    from pansim.data.manifest import pending_labels, unfinished_labels

    assert pending_labels(case / "grown") == 0 and unfinished_labels(case / "grown", "x") is None
