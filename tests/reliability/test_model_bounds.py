"""Model files with a recomputed hash but a hostile or inconsistent config or weights."""

import time

import pytest
import torch
from _model_files import read_parts, rewrite
from _tiny_models import build_tiny

from pansim.model_io import ModelFileError, load_model, save_model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    model = build_tiny(elements=["Si", "O"], r_max=4.0, seed=1)
    return save_model(model, tmp_path_factory.mktemp("bounds") / "good")


def _with_config(good, tmp_path, **changes):
    config, _, _ = read_parts(good)
    return rewrite(good, tmp_path / "edited.safetensors", config={**config, **changes})


def test_good_file_loads(good):
    assert load_model(good).pansim_config["num_channels"] == 8


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"correlation": 12}, r"correlation = 12 is outside"),
        ({"correlation": [2, 12]}, r"correlation = 12 is outside"),
        ({"correlation": [2]}, r"correlation per layer must list one integer per interaction"),
        ({"num_channels": [8, 8]}, r"num_channels must be an integer"),
        ({"elements": [99999]}, r"atomic number 99999 is not in 1\.\.118"),
        ({"elements": ["Xx"]}, r"unknown element symbol 'Xx'"),
        ({"elements": []}, r"elements must be a list of 1 to 118"),
        ({"r_max": float("nan")}, r"r_max must be finite"),
        ({"r_max": -4.0}, r"r_max must be in \(0"),
        ({"r_max": 1e6}, r"r_max must be in \(0"),
        ({"num_channels": 32.7}, r"num_channels must be an integer, not 32\.7"),
        ({"num_channels": "8"}, r"num_channels must be an integer"),
        ({"num_channels": 100000}, r"num_channels = 100000 is outside"),
        ({"max_L": 9}, r"max_L = 9 is outside"),
        ({"num_interactions": 1000}, r"num_interactions = 1000 is outside"),
        ({"radial_MLP": [16, 16] * 10}, r"radial_MLP must be a list of at most"),
        ({"avg_num_neighbors": -1.0}, r"avg_num_neighbors must be positive"),
        ({"num_channels": 16}, r"shape mismatch: config elements x num_channels"),
        ({"num_interactions": 3}, r"shape mismatch: config num_interactions"),
        ({"correlation": 3}, r"shape mismatch: config correlation"),
        ({"num_bessel": 7}, r"shape mismatch: config num_bessel"),
        ({"radial_MLP": [16, 8]}, r"shape mismatch: config radial_MLP"),
        ({"r_max": 5.0}, r"shape mismatch: config r_max"),
        ({"elements": ["O", "Si"]}, r"shape mismatch: config elements"),
    ],
)
def test_config_out_of_bounds_is_refused_before_building(good, tmp_path, changes, message):
    bad = _with_config(good, tmp_path, **changes)
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=message) as info:
        load_model(bad)
    assert time.perf_counter() - start < 2.0  # refused from the header, nothing built
    assert "edited.safetensors" in str(info.value)


def _with_tensor(good, tmp_path, name, fn):
    _, _, tensors = read_parts(good)
    tensors = {**tensors, name: fn(tensors[name])}
    return rewrite(good, tmp_path / "weights.safetensors", tensors=tensors)


def test_int64_weights_are_refused(good, tmp_path):
    name = "readouts.0.linear.weight"
    bad = _with_tensor(good, tmp_path, name, lambda t: (t * 100).to(torch.int64))
    with pytest.raises(ModelFileError, match=rf"dtype mismatch.*{name}"):
        load_model(bad)


def test_weights_of_another_float_dtype_are_refused(good, tmp_path):
    name = "readouts.0.linear.weight"
    bad = _with_tensor(good, tmp_path, name, lambda t: t.float())
    with pytest.raises(ModelFileError, match=rf"{name} is torch.float32, the file declares"):
        load_model(bad)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(good, tmp_path, value):
    name = "interactions.0.conv_tp_weights.layer0.weight"

    def poison(t):
        t = t.clone()
        t.view(-1)[0] = value
        return t

    with pytest.raises(ModelFileError, match=rf"{name} holds NaN or inf"):
        load_model(_with_tensor(good, tmp_path, name, poison))


def test_unknown_metadata_dtype_is_refused(good, tmp_path):
    _, meta, _ = read_parts(good)
    bad = rewrite(good, tmp_path / "meta.safetensors", meta={**meta, "dtype": "int8"})
    with pytest.raises(ModelFileError, match="metadata dtype must be one of"):
        load_model(bad)
