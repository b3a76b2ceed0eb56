import json
import os
import subprocess
import sys
from pathlib import Path

import ase.io
import pytest
import torch
import yaml

from pansim.training.checkpoint import CheckpointError
from pansim.training.config import ConfigError
from pansim.training.data import file_sha256
from pansim.training.trainer import CHECKPOINT, Trainer, TrainingDiverged, epoch_order, train


def checkpoint(config):
    return torch.load(f"{config.out_dir}/{CHECKPOINT}", weights_only=True)


def assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_epoch_order_is_seeded_and_drops_short_tail():
    assert epoch_order(7, 3, seed=1, epoch=0, world=1) == epoch_order(7, 3, 1, 0, 1)
    assert epoch_order(7, 3, 1, 0, 1) != epoch_order(7, 3, 1, 1, 1)
    assert [len(b) for b in epoch_order(7, 3, 1, 0, world=2)] == [3, 3]
    assert sorted(sum(epoch_order(7, 3, 1, 0, 1), [])) == list(range(7))


def test_training_writes_metrics_best_model_and_provenance(make_config):
    config = make_config(max_epochs=2, test_file=None)
    state = train(config)
    assert state.epoch == 2 and len(state.history) == 2
    config_path = Path(config.out_dir)
    rows = json.loads((config_path / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [0, 1]
    assert (config_path / "metrics.csv").read_text().startswith("epoch,step,lr,train_loss")
    from pansim.model_io import load_model

    model = load_model(config_path / "best_model.safetensors")
    meta = model.pansim_metadata["provenance"]
    assert meta["training_config"]["lr"] == config.lr
    assert meta["data_sha256"]["train_file"] == file_sha256(config.train_file)


@pytest.mark.parametrize(
    "schedule",
    [
        dict(scheduler="plateau", scheduler_patience=0, scheduler_factor=0.5),
        # split at step 4, inside the warm-up ramp
        dict(
            scheduler="cosine",
            optimizer="adam",
            clip_grad_norm=None,
            ema_decay=None,
            lr_warmup_steps=5,
        ),
    ],
    ids=["plateau-adamw-ema", "cosine-adam-warmup"],
)
def test_resume_continues_exactly(make_config, tmp_path, schedule):
    common = dict(max_epochs=2, **schedule)
    straight = make_config(out_dir=str(tmp_path / "a"), **common)
    train(straight)
    split = make_config(out_dir=str(tmp_path / "b"), max_steps=4, **common)
    assert train(split).step == 4  # stops mid-epoch 1 (3 batches per epoch)
    resumed = make_config(out_dir=str(tmp_path / "b"), **common)
    state = train(resumed, resume=True)
    a, b = checkpoint(straight), checkpoint(resumed)
    assert state.step == a["state"]["step"] == 6
    assert_same_tensors(a["model"], b["model"])
    if a["ema"] is not None:
        for x, y in zip(a["ema"]["shadow_params"], b["ema"]["shadow_params"], strict=True):
            assert torch.equal(x, y)
    assert_same_tensors(a["optimizer"]["state"][0], b["optimizer"]["state"][0])
    assert a["scheduler"] == b["scheduler"]
    assert a["state"]["history"] == b["state"]["history"]


def test_resume_in_a_fresh_process_continues_exactly(make_config, tmp_path):
    """The user's case: ``pansim train`` stops, a new ``pansim train --resume`` goes on.

    Every run is its own fresh process (one thread each), as on the command line, so
    TorchScript graphs run their first calls again after the resume; the resumed run
    must still match a straight run step for step.
    """
    common = dict(max_epochs=2, scheduler="plateau", scheduler_patience=0, scheduler_factor=0.5)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(make_config(out_dir=str(tmp_path / "a"), **common).to_dict()))
    command = [sys.executable, "-m", "pansim", "train", str(path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for extra in ([], ["--out_dir", str(tmp_path / "b"), "--max_steps", "4"],
                  ["--out_dir", str(tmp_path / "b"), "--resume"]):  # fmt: skip
        subprocess.run([*command, *extra], check=True, capture_output=True, env=env)
    a = torch.load(tmp_path / "a" / CHECKPOINT, weights_only=True)
    b = torch.load(tmp_path / "b" / CHECKPOINT, weights_only=True)
    assert b["state"]["step"] == a["state"]["step"] == 6
    assert_same_tensors(a["model"], b["model"])
    assert a["state"]["history"] == b["state"]["history"]


def test_resume_with_other_config_is_refused(make_config, tmp_path):
    train(make_config(out_dir=str(tmp_path / "c"), max_steps=1))
    with pytest.raises(CheckpointError, match="different config"):
        train(make_config(out_dir=str(tmp_path / "c"), lr=0.1), resume=True)
    with pytest.raises(CheckpointError, match="--resume"):
        train(make_config(out_dir=str(tmp_path / "c")))
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(make_config(out_dir=str(tmp_path / "d")), resume=True)


def test_nan_loss_stops_names_batch_and_keeps_checkpoint(make_config, tmp_path):
    config = make_config(checkpoint_every=1, out_dir=str(tmp_path / "n"))
    trainer = Trainer(config)
    order = epoch_order(8, 3, config.seed, 0, 1)
    trainer.data.train[order[1][0]].energy = float("nan")  # as if the model had blown up
    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 0, step 2 \(batch 1 ") as e:
        trainer.fit()
    assert f"structures {sorted(order[1])}" in str(e.value)
    assert "last good checkpoint" in str(e.value)
    saved = checkpoint(config)
    assert saved["state"]["step"] == 1
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())


def test_nan_label_rejected_at_load(make_config, emt_files, tmp_path):
    from pansim.training.data import DataError

    frames = ase.io.read(emt_files["train"], ":")
    frames[5].info["REF_energy"] = float("nan")
    bad = tmp_path / "nan.xyz"
    ase.io.write(bad, frames, format="extxyz")
    with pytest.raises(DataError, match="structure 5: energy label contains NaN"):
        Trainer(make_config(train_file=str(bad)))


def test_early_stopping_after_patience_epochs(make_config):
    trainer = Trainer(make_config(early_stopping_patience=2))
    trainer.out.mkdir(parents=True)
    for value in (3.0, 2.0, 2.5):
        trainer._track_best(value)
        assert not trainer.state.stop_reason
    trainer._track_best(2.0)  # not better than the best (2.0): second epoch without improvement
    assert trainer.state.stop_reason.startswith("early stopping")
    assert trainer.state.best_metric == 2.0
    assert (trainer.out / "best_model.safetensors").exists()


def test_model_kwargs_from_data(make_config):
    from pansim.training.trainer import load_data, model_kwargs

    config = make_config(atomic_energies={"Ag": -2.0, "Cu": -1.0})
    data = load_data(config)
    kwargs = model_kwargs(config, data)
    assert kwargs["elements"] == ["Cu", "Ag"] and kwargs["atomic_energies"] == [-1.0, -2.0]
    assert 1.0 < kwargs["c_max"] < 40 and kwargs["avg_num_neighbors"] > 10
    assert kwargs["num_channels"] == config.hyperparameters["num_channels"]
    baseline = make_config(variant="baseline")
    fitted = model_kwargs(baseline, data)
    assert "c_max" not in fitted and len(fitted["atomic_energies"]) == 2


def test_c_max_margin_scales_the_data_c_max(make_config):
    from pansim.training.trainer import load_data, model_kwargs

    config = make_config(c_max_percentile=100.0)
    data = load_data(config)
    plain = model_kwargs(config, data)["c_max"]
    wider = model_kwargs(make_config(c_max_percentile=100.0, c_max_margin=1.3), data)["c_max"]
    assert wider == pytest.approx(1.3 * plain, rel=1e-12)
    with pytest.raises(Exception, match="c_max_margin must be > 0"):
        make_config(c_max_margin=0.0)


def test_pgs_calibration_sets_buffers_keeps_baseline_and_ships_them(make_config, tmp_path):
    """``pgs_calibrate`` fits the PGS buffers to the training data before step 1.

    The model is still the baseline function at init; the buffers are saved with the
    weights, so the best model file reproduces the trained model.
    """
    from _tiny import TINY

    from pansim.model_io import load_model
    from pansim.training.data import batch_to_tensors

    hyper = dict(TINY, num_interactions=2, pgs_edge_mix="residual")
    config = make_config(
        variant="pgs", max_epochs=1, pgs_calibrate=True, pgs_calibrate_spread=1.0,
        hyperparameters=dict(hyper, pgs_adaptive_squash=True),
        out_dir=str(tmp_path / "cal"),
    )  # fmt: skip
    plain = Trainer(make_config(variant="baseline", hyperparameters=hyper))
    trainer = Trainer(config)
    model = trainer.model
    es = model.readouts[0].expansion
    assert not torch.equal(es.shift, torch.zeros_like(es.shift))
    assert float(model.radial_embedding.edge_mixer.fb_scale) != 1.0
    assert set(trainer.calibration) == {
        "edge_mixer", "readout_expansions.0.expansion", "readout_expansions.1.expansion"
    }  # fmt: skip
    batch = batch_to_tensors(trainer.data.train, torch.float64, "cpu")
    e_cal = model(batch, compute_force=False)["energy"]
    e_base = plain.model(batch, compute_force=False)["energy"]
    torch.testing.assert_close(e_cal, e_base, rtol=1e-12, atol=1e-10)
    # the calibrated squash resolves atoms: t spreads over the ES centres
    feats = []
    handle = es.register_forward_pre_hook(lambda m, a: feats.append(a[0]))
    model(batch, compute_force=False)
    handle.remove()
    t = es.squash(feats[0])
    assert float(t.std(0).median()) > 0.5  # ES centre spacing 0.29
    trainer.fit()
    saved = load_model(Path(config.out_dir) / "best_model.safetensors")
    saved_es = saved.readouts[0].expansion
    assert torch.equal(saved_es.scale, es.scale) and torch.equal(saved_es.shift, es.shift)
    assert "pgs_calibration" in saved.pansim_metadata["provenance"]


def test_pan_curvature_penalty_flattens_the_amplitude(make_config):
    from pansim.modules.pan import PANPooling
    from pansim.training.trainer import pan_curvature

    def curvature_after(weight, out):
        config = make_config(
            max_epochs=2, test_file=None, variant="pan", pan_curvature_weight=weight, out_dir=out
        )
        trainer = Trainer(config)
        with torch.no_grad():  # start from a bent amplitude, the same for both runs
            torch.manual_seed(1)
            for layer in trainer.model.modules():
                if isinstance(layer, PANPooling):
                    layer.linear_2.weight.normal_(0.0, 2.0)
        before = float(pan_curvature(trainer.model))
        trainer.fit()
        return before, float(pan_curvature(trainer.model))

    tmp = make_config(max_epochs=1).out_dir
    b0, free = curvature_after(0.0, tmp + "-free")
    b1, penalised = curvature_after(100.0, tmp + "-penalised")
    assert b0 == b1 > 0.0
    assert penalised < 0.5 * free
    # no PAN, no penalty term
    assert float(pan_curvature(Trainer(make_config(max_epochs=1, variant="baseline")).model)) == 0


def test_module_lr_scale_puts_added_modules_in_their_own_group(make_config):
    from pansim.training.trainer import is_added_parameter

    config = make_config(max_epochs=1, test_file=None, variant="pan+pgs", module_lr_scale=0.25)
    trainer = Trainer(config)
    groups = trainer.optimizer.param_groups
    assert [g["lr"] for g in groups] == [config.lr, config.lr * 0.25]
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    assert all(is_added_parameter(names[id(p)]) for p in groups[1]["params"])
    assert not any(is_added_parameter(names[id(p)]) for p in groups[0]["params"])
    n_trainable = sum(1 for p in trainer.model.parameters() if p.requires_grad)
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == n_trainable
    # the default keeps one group (and so the optimizer state of older checkpoints)
    plain = Trainer(
        make_config(max_epochs=1, test_file=None, variant="pan+pgs", out_dir=config.out_dir + "b")
    )
    assert len(plain.optimizer.param_groups) == 1
    # ... in the state dict order (that of older checkpoints), not the module tree's
    from pansim.backbones import state_dict_parameters

    in_file_order = [id(p) for _, p in state_dict_parameters(plain.model)]
    assert [id(p) for p in plain.optimizer.param_groups[0]["params"]] == in_file_order


def test_lr_warmup_ramps_every_group_then_leaves_the_schedule_alone(make_config):
    config = make_config(
        max_epochs=3, test_file=None, variant="pan+pgs", module_lr_scale=0.25, lr_warmup_steps=4
    )
    trainer = Trainer(config)
    seen = []
    step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        seen.append([g["lr"] for g in trainer.optimizer.param_groups])
        return step(*args, **kwargs)

    trainer.optimizer.step = recording_step
    trainer.fit()
    assert len(seen) == 9  # 3 epochs of 3 batches: past the ramp
    for k, lrs in enumerate(seen[:4]):
        expected = [config.lr * (k + 1) / 4, config.lr * 0.25 * (k + 1) / 4]
        assert lrs == pytest.approx(expected)
    assert all(lrs == pytest.approx([config.lr, config.lr * 0.25]) for lrs in seen[4:])
    # between steps (schedulers, checkpoints, metrics.csv) the scheduled rates are in place
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [config.lr, config.lr * 0.25]


def test_lr_warmup_default_keeps_the_fingerprint_of_older_runs(make_config):
    plain = make_config(max_epochs=1)
    assert make_config(max_epochs=1, lr_warmup_steps=0).fingerprint() == plain.fingerprint()
    assert make_config(max_epochs=1, lr_warmup_steps=5).fingerprint() != plain.fingerprint()
    with pytest.raises(ConfigError, match="lr_warmup_steps must be >= 0"):
        make_config(max_epochs=1, lr_warmup_steps=-1)
