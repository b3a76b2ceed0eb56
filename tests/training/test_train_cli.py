import json

import torch
import yaml

from pansim.cli import main


def write_config(make_config, tmp_path, **overrides):
    config = make_config(**overrides).to_dict()
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, config


def test_cli_train_then_eval(make_config, tmp_path, capsys):
    path, config = write_config(make_config, tmp_path, max_epochs=3)
    assert main(["train", str(path), "--max_epochs", "1"]) == 0
    assert "done: 1 epochs" in capsys.readouterr().out
    out = tmp_path / "run"
    assert json.loads((out / "summary.json").read_text())["epochs"] == 1
    assert main(["train", str(path), "--resume", "--max_epochs", "1", "--lr", "0.5"]) == 2
    assert "different config" in capsys.readouterr().err
    report = tmp_path / "report"
    code = main(
        ["eval", str(out / "best_model.safetensors"), config["test_file"], "--out", str(report)]
    )
    assert code == 0
    assert "energy_per_atom" in capsys.readouterr().out
    assert (report / "parity_forces.png").exists()
    assert json.loads((report / "metrics.json").read_text())["n_structures"] == 4


def test_cli_resume_continues(make_config, tmp_path, capsys):
    path, _ = write_config(make_config, tmp_path, max_epochs=2, dtype="float32")
    assert main(["train", str(path), "--max_steps", "2"]) == 0
    assert main(["train", str(path), "--resume"]) == 0
    assert "done: 2 epochs, 6 steps" in capsys.readouterr().out
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert all(v.dtype == torch.float32 for v in saved["model"].values() if v.is_floating_point())


def test_cli_bad_input_exit_codes(make_config, tmp_path, capsys):
    path, _ = write_config(make_config, tmp_path)
    assert main(["train", str(path), "--batchsize", "2"]) == 2
    assert "did you mean 'batch_size'" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing.pt"), str(path)]) == 2
    assert main(["train", str(path), "--train_file", str(tmp_path / "nope.xyz")]) == 2
    assert "data file not found" in capsys.readouterr().err
