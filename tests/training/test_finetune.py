"""Fine-tuning from a grafted model: init_from, freeze modes, source E0s, replay (CLI)."""

import numpy as np
import pytest
import torch
import yaml
from _tiny import TINY

from pansim.cli import main
from pansim.training.config import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def grafted(tmp_path_factory):
    """A trained-looking Cu/Ag baseline (2 interactions, random weights) grafted to pan+pgs."""
    from pansim import graft
    from pansim.backbones import build_model
    from pansim.model_io import default_dtype, save_model
    from pansim.testing import perturb_parameters

    folder = tmp_path_factory.mktemp("finetune")
    with default_dtype(torch.float64):
        hyper = {**TINY, "num_interactions": 2, "atomic_energies": [-3.5, -2.5]}
        source = build_model(variant="baseline", elements=["Cu", "Ag"], r_max=4.0, **hyper)
    perturb_parameters(source, scale=0.05, seed=5)
    save_model(source, folder / "source.safetensors")
    save_model(graft(source, "pan+pgs"), folder / "grafted.safetensors")  # identity checked
    return folder


def run_cli(make_config, tmp_path, name, **overrides):
    """``pansim train`` with a YAML file; returns (exit code, the run's checkpoint state)."""
    config = make_config(out_dir=str(tmp_path / name), **overrides).to_dict()
    config["hyperparameters"] = {}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    code = main(["train", str(path), "--max_steps", "2", "--ema_decay", "null"])
    state = None
    if code == 0:
        state = torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)["model"]
    return code, state


def initial_state(grafted):
    from pansim.model_io import load_model

    return load_model(grafted / "grafted.safetensors").state_dict()


def changed(before, after, prefix):
    keys = [k for k in before if k.startswith(prefix) and before[k].is_floating_point()]
    assert keys, prefix
    return {k: not torch.equal(before[k], after[k]) for k in keys}


@pytest.mark.parametrize(
    "freeze, fixed, trained",
    [
        ("backbone", ["node_embedding.", "interactions.", "products.", "readouts."], []),
        ("interactions:1", ["node_embedding.", "interactions.0.", "products.0."],
         ["interactions.1.", "products.1."]),
        pytest.param(
            "none", [], ["node_embedding.", "interactions.0.", "readouts."],
            marks=pytest.mark.slow,
        ),
    ],
)  # fmt: skip
def test_freeze_modes_from_the_cli(grafted, make_config, tmp_path, freeze, fixed, trained):
    init = str(grafted / "grafted.safetensors")
    code, after = run_cli(make_config, tmp_path, "run", init_from=init, freeze=freeze)
    assert code == 0
    before = initial_state(grafted)
    for prefix in fixed:  # frozen parameters are bit-for-bit the initial ones
        assert not any(changed(before, after, prefix).values()), prefix
    for prefix in [*trained, "pan_layers.", "readout_expansions."]:
        assert any(changed(before, after, prefix).values()), prefix
    # E0s and scale/shift come from the source model (default atomic_energies)
    for key in ("atomic_energies_fn.atomic_energies", "scale_shift.scale", "scale_shift.shift"):
        assert torch.equal(before[key], after[key]), key
    assert np.allclose(before["atomic_energies_fn.atomic_energies"].numpy(), [-3.5, -2.5])


@pytest.mark.slow
def test_given_atomic_energies_replace_the_source_ones(grafted, make_config, tmp_path):
    init = str(grafted / "grafted.safetensors")
    e0 = {"Cu": -1.25, "Ag": -0.75}
    code, after = run_cli(
        make_config, tmp_path, "e0", init_from=init, freeze="backbone", atomic_energies=e0
    )
    assert code == 0
    assert after["atomic_energies_fn.atomic_energies"].tolist() == [-1.25, -0.75]


def test_replay_from_the_cli(grafted, make_config, emt_files, tmp_path, capsys):
    """``pansim replay`` pseudo-labels; at the start the source reproduces them exactly."""
    from pansim.training.trainer import Trainer

    init = str(grafted / "grafted.safetensors")
    replay = tmp_path / "replay.xyz"
    assert main(["replay", init, "--structures", str(emt_files["val"]), "--out", str(replay)]) == 0
    assert "wrote 4 structures" in capsys.readouterr().out
    trainer = Trainer(make_config(init_from=init, replay_file=str(replay), hyperparameters={}))
    # labels are the model's own predictions, written by extxyz with 8 decimals (forces):
    # a loss of order 1e-16, against about 1e-2 for the EMT labels
    assert float(trainer._replay_loss(4).detach()) < 1e-12
    runs = replay_runs(make_config, tmp_path, init, replay, {"w5": 5.0})
    assert not all(torch.equal(runs["w5"][k], runs["none"][k]) for k in runs["none"])


@pytest.mark.slow
def test_replay_weight_zero_trains_like_no_replay(grafted, make_config, emt_files, tmp_path):
    init = str(grafted / "grafted.safetensors")
    replay = tmp_path / "replay.xyz"
    assert main(["replay", init, "--structures", str(emt_files["val"]), "--out", str(replay)]) == 0
    runs = replay_runs(make_config, tmp_path, init, replay, {"w0": 0.0})
    assert all(torch.equal(runs["w0"][k], runs["none"][k]) for k in runs["none"])


def replay_runs(make_config, tmp_path, init, replay, weights):
    """Runs with replay at the given weights and one without; name -> final weights."""
    runs = {}
    for name, weight in weights.items():
        code, runs[name] = run_cli(
            make_config, tmp_path, name, init_from=init, replay_file=str(replay),
            replay_weight=weight,
        )  # fmt: skip
        assert code == 0
    code, runs["none"] = run_cli(make_config, tmp_path, "none", init_from=init)
    assert code == 0
    return runs


def test_replay_sampled_structures_with_a_mace_file(tmp_path, capsys):
    """A mace-torch file labels sampled Ag crystals; without --trust-pickle it is refused."""
    from pathlib import Path

    import ase.io

    mace_file = Path(__file__).parents[1] / "graft" / "data" / "mace_run_train_tiny.model"
    out = tmp_path / "replay.xyz"
    args = ["replay", str(mace_file), "--sample", "ag", "--n", "2", "--out", str(out)]
    assert main(args) == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert main([*args, "--trust-pickle"]) == 0
    frames = ase.io.read(out, ":")
    assert len(frames) == 2 and all("REF_energy" in f.info for f in frames)
    assert main(["replay", str(mace_file), "--sample", "xx", "--out", str(out)]) == 2


def test_bad_fine_tuning_input(grafted, make_config, emt_files, tmp_path, capsys):
    from ase import Atoms
    from ase.io import write

    from pansim.training.finetune import resolve

    init = str(grafted / "grafted.safetensors")
    gold = tmp_path / "gold.xyz"
    atoms = Atoms("Au2", positions=[[0, 0, 0], [0, 0, 2.5]], pbc=False)
    atoms.info["REF_energy"] = 0.0
    atoms.arrays["REF_forces"] = np.zeros((2, 3))
    write(gold, atoms, format="extxyz")
    with pytest.raises(ConfigError, match=r"element\(s\) \['Au'\] that the init_from model"):
        resolve(make_config(init_from=init, replay_file=str(gold), hyperparameters={}))
    with pytest.raises(ConfigError, match="cannot change a model loaded with init_from"):
        resolve(make_config(init_from=init))  # the tiny hyperparameters of make_config
    with pytest.raises(ConfigError, match="freeze='layers:2'"):
        make_config(freeze="layers:2")
    with pytest.raises(ConfigError, match="needs init_from"):
        resolve(make_config(atomic_energies="source"))
    code, _ = run_cli(make_config, tmp_path, "x", init_from=init, freeze="interactions:3")
    assert code == 2 and "only 2 interactions" in capsys.readouterr().err
    code, _ = run_cli(
        make_config, tmp_path, "y", init_from=str(grafted / "source.safetensors"), freeze="backbone"
    )
    assert code == 2 and "leaves nothing to train" in capsys.readouterr().err


@pytest.mark.slow
def test_fine_tuning_resumes_exactly(grafted, make_config, tmp_path):
    """Stopped after 1 step and resumed to 2: the weights of a straight 2-step run."""
    init = str(grafted / "grafted.safetensors")
    _, straight = run_cli(make_config, tmp_path, "straight", init_from=init, freeze="backbone")
    config = make_config(out_dir=str(tmp_path / "split"), init_from=init, freeze="backbone")
    config = {**config.to_dict(), "hyperparameters": {}}
    path = tmp_path / "split.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path), "--max_steps", "1", "--ema_decay", "null"]) == 0
    assert main(["train", str(path), "--resume", "--max_steps", "2", "--ema_decay", "null"]) == 0
    split = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(split[k], straight[k]) for k in straight)
