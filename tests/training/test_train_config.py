import pytest

from pansim.training.config import (
    ConfigError,
    TrainConfig,
    load_config,
    merge,
    parse_overrides,
)


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_unknown_key_in_file_is_named_with_suggestion(tmp_path):
    path = write(tmp_path, "train_file: a.xyz\nvalid_file: b.xyz\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'learning_rat'.*c.yaml"):
        load_config(path)
    path = write(tmp_path, "train_file: a.xyz\nvalid_file: b.xyz\nbatchsize: 2\n")
    with pytest.raises(ConfigError, match=r"did you mean 'batch_size'"):
        load_config(path)


def test_unknown_override_is_named(tmp_path):
    path = write(tmp_path, "train_file: a.xyz\nvalid_file: b.xyz\n")
    with pytest.raises(ConfigError, match=r"'lrr'.*command-line.*did you mean 'lr'"):
        load_config(path, {"lrr": 1.0})


def test_command_line_wins_and_hyperparameters_merge(tmp_path):
    path = write(
        tmp_path,
        "train_file: a.xyz\nvalid_file: b.xyz\nlr: 0.1\n"
        "hyperparameters: {num_channels: 16, max_L: 1}\n",
    )
    tokens = ["--lr", "1e-3", "--hyperparameters.num_channels", "32", "--ema_decay", "null"]
    config = load_config(path, parse_overrides(tokens))
    assert config.lr == 1e-3
    assert config.hyperparameters == {"num_channels": 32, "max_L": 1}
    assert config.ema_decay is None


def test_parse_overrides_forms():
    got = parse_overrides(["--a=1", "--b", "x", "--flag", "--elements", "[H, O]"])
    assert got == {"a": 1, "b": "x", "flag": True, "elements": ["H", "O"]}
    with pytest.raises(ConfigError):
        parse_overrides(["value-without-key"])
    assert merge({"x": {"a": 1}, "y": 1}, {"x": {"b": 2}}) == {"x": {"a": 1, "b": 2}, "y": 1}


@pytest.mark.parametrize(
    "bad",
    [
        {"optimizer": "sgd"},
        {"scheduler": "step"},
        {"dtype": "float16"},
        {"variant": "pan+foo"},
        {"batch_size": 0},
        {"lr": -1.0},
        {"ema_decay": 1.5},
        {"atomic_energies": "average"},
        {"train_file": ""},
    ],
)
def test_invalid_values_rejected(bad):
    base = {"train_file": "a.xyz", "valid_file": "b.xyz"}
    with pytest.raises(ConfigError):
        TrainConfig(**{**base, **bad})


def test_fingerprint_ignores_run_control_keys():
    a = TrainConfig(train_file="a", valid_file="b", max_steps=3, out_dir="x")
    b = TrainConfig(train_file="a", valid_file="b", max_steps=None, out_dir="y")
    c = TrainConfig(train_file="a", valid_file="b", lr=0.5)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_numbers_as_text_are_coerced_and_checked():
    config = TrainConfig(train_file="a", valid_file="b", lr="1e-3", batch_size="4")
    assert config.lr == 1e-3 and config.batch_size == 4
    with pytest.raises(ConfigError, match="batch_size must be a number"):
        TrainConfig(train_file="a", valid_file="b", batch_size=2.5)
    with pytest.raises(ConfigError, match="progress must be true or false"):
        TrainConfig(train_file="a", valid_file="b", progress="yes please")


def test_max_epochs_counts_only_for_the_cosine_horizon():
    def fp(**kw):
        return TrainConfig(train_file="a", valid_file="b", **kw).fingerprint()

    assert fp(max_epochs=5) == fp(max_epochs=50)
    assert fp(max_epochs=5, scheduler="cosine") != fp(max_epochs=50, scheduler="cosine")


def test_example_config_documents_every_key():
    from pathlib import Path

    import yaml

    from pansim.training.config import known_keys

    path = Path(__file__).resolve().parents[2] / "configs" / "train_example.yaml"
    assert list(yaml.safe_load(path.read_text())) == known_keys()
    load_config(path)
