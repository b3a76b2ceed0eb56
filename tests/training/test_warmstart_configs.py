"""The warm-start tests (configs/warmstart*/<system>): runs that differ only by the variant."""

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.io import read

ROOT = Path(__file__).resolve().parents[2]
WARMSTART = ROOT / "configs" / "warmstart"
#: (warm-start config set, its stage-1 config set, its runs' root)
SETS = [
    ("configs/warmstart", "configs/converged", "results/warmstart"),
    ("configs/warmstart-grown", "configs/grown", "results/warmstart-grown"),
    ("configs/warmstart-ramp", "configs/converged", "results/warmstart-ramp"),
]
CASES = [
    (*case, path.name)
    for case in SETS
    for path in sorted((ROOT / case[0]).iterdir())
    if path.is_dir()
]
SYSTEMS = sorted(p.name for p in WARMSTART.iterdir() if p.is_dir())
VARIANTS = ("pan", "pgs", "pan+pgs")


def test_si_has_a_warm_start_test():
    assert "si" in SYSTEMS


def _stage1(stage1, system):
    return yaml.safe_load((ROOT / f"{stage1}/{system}/baseline-seed0.yaml").read_text())


@pytest.mark.parametrize(("warm", "stage1", "runs", "system"), CASES)
def test_runs_differ_only_in_variant_start_file_and_output(warm, stage1, runs, system):
    configs = ROOT / warm / system
    base = yaml.safe_load((configs / "baseline-seed0.yaml").read_text())
    for variant in VARIANTS:
        graft = yaml.safe_load((configs / f"{variant}-seed0.yaml").read_text())
        differing = {k for k in base.keys() | graft.keys() if base.get(k) != graft.get(k)}
        assert differing == {"init_from", "variant", "out_dir"}, variant
        assert graft["init_from"] == f"{runs}/{system}/init-{variant}.safetensors"
    converged = _stage1(stage1, system)
    start = converged["out_dir"]
    assert base["init_from"] == f"{start}/best_model.safetensors"
    # the architecture comes from the start file; the learning rate is the baseline's at stop
    own = ("hyperparameters", "r_max", "atomic_energies", "c_max_percentile", "lr", "variant")
    same = {k for k in converged if k not in (*own, "out_dir")}
    assert {k: base[k] for k in same} == {k: converged[k] for k in same}
    history = json.loads((ROOT / start / "metrics.json").read_text())
    assert base["lr"] == pytest.approx(history[-1]["lr"])


@pytest.mark.parametrize(("warm", "stage1", "runs", "system"), CASES)
def test_the_grafted_start_predicts_what_the_converged_baseline_predicts(
    warm, stage1, runs, system
):
    from pansim import PANCalculator

    atoms = read(ROOT / f"data/{system}/val.extxyz", index=0)
    out = []
    names = [f"{_stage1(stage1, system)['out_dir']}/best_model.safetensors"]
    names += [f"{runs}/{system}/init-{variant}.safetensors" for variant in VARIANTS]
    for name in names:
        atoms.calc = PANCalculator(model=ROOT / name, dtype="float64")
        out.append((atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    e0, f0, s0 = out[0]
    for e1, f1, s1 in out[1:]:
        assert abs(e0 - e1) < 1e-10
        np.testing.assert_allclose(f1, f0, atol=1e-10)
        np.testing.assert_allclose(s1, s0, atol=1e-10)


def test_the_generator_rewrites_the_si_configs(tmp_path):
    """scripts/warmstart_configs.py gives the committed Si runs' settings back."""
    script = runpy.run_path(str(ROOT / "scripts" / "warmstart_configs.py"))
    assert script["main"](["--system", "si", "--configs", str(tmp_path), "--no-graft"]) == 0
    for variant in ("baseline", *VARIANTS):
        made = yaml.safe_load((tmp_path / "si" / f"{variant}-seed0.yaml").read_text())
        committed = yaml.safe_load((WARMSTART / "si" / f"{variant}-seed0.yaml").read_text())
        assert made == committed, variant
    assert script["graft_options"]("pgs", 7.9) == []
    assert script["graft_options"]("pan+pgs", 7.9) == ["--option", "c_max=7.9"]


def test_c_max_is_what_the_from_scratch_pan_run_got_from_the_same_data():
    from pansim.model_io import read_model_file

    script = runpy.run_path(str(ROOT / "scripts" / "warmstart_configs.py"))
    c_max = script["c_max_for"](ROOT / "configs/converged/si/baseline-seed0.yaml")
    scratch = ROOT / "results/converged/si/pan+pgs-seed0/best_model.safetensors"
    assert c_max == pytest.approx(read_model_file(scratch)[0]["c_max"], rel=1e-12)


def test_the_warm_up_option_ramps_every_run_over_whole_epochs(tmp_path):
    script = runpy.run_path(str(ROOT / "scripts" / "warmstart_configs.py"))
    argv = ["--system", "si", "--configs", str(tmp_path), "--no-graft", "--warmup-epochs", "2"]
    assert script["main"](argv) == 0
    frames = len(read(ROOT / "data/si/train.extxyz", index=":"))
    for variant in ("baseline", *VARIANTS):
        path = tmp_path / "si" / f"{variant}-seed0.yaml"
        made = yaml.safe_load(path.read_text())
        committed = yaml.safe_load((WARMSTART / "si" / f"{variant}-seed0.yaml").read_text())
        # 2 epochs of ceil(frames / batch_size) steps; nothing else moves
        assert made.pop("lr_warmup_steps") == 2 * -(-frames // committed["batch_size"])
        assert made == committed, variant
        assert "ramps up linearly over the first 2 epoch(s)" in path.read_text()


def test_the_first_steps_probe_compares_from_one_start_and_batch_order(make_config, tmp_path):
    """scripts/warmstart_first_steps.py: plain and warmed-up epochs share start and batches."""
    script = runpy.run_path(str(ROOT / "scripts" / "warmstart_first_steps.py"))
    config = make_config(max_epochs=3, test_file=None, variant="pgs", lr=5e-2).to_dict()
    path = tmp_path / "pgs-seed0.yaml"
    path.write_text(yaml.safe_dump(config))
    plain = script["one_epoch"](path, False, tmp_path / "plain")
    ramped = script["one_epoch"](path, True, tmp_path / "ramped")
    assert plain["valid_loss_start"] == ramped["valid_loss_start"]
    # step 1 is taken before any update: the same loss; after it the runs differ
    assert plain["train_losses"][0] == ramped["train_losses"][0]
    assert len(plain["train_losses"]) == len(ramped["train_losses"]) == 3
    assert plain["train_losses"][1:] != ramped["train_losses"][1:]
    # each replays what the trainer does in the first epoch of a run, ramp included
    from pansim.training.config import TrainConfig
    from pansim.training.trainer import train

    for warmup, probe in ((0, plain), (3, ramped)):
        out = str(tmp_path / f"run-{warmup}")
        train(TrainConfig(**{**config, "max_epochs": 1, "lr_warmup_steps": warmup, "out_dir": out}))
        history = json.loads(Path(out, "metrics.json").read_text())
        assert history[0]["valid_loss"] == pytest.approx(probe["valid_loss_after"], rel=1e-12)
    rows = {("pgs", False): plain, ("pgs", True): ramped}
    text = script["table"]("emt", 0, rows)
    assert "| pgs | none |" in text and "| pgs | one epoch |" in text
