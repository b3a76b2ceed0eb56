"""Model files: round trip, provenance, and clear errors for every kind of bad file."""

import json
import struct

import pytest
import torch

from pansim.backbones import build_model
from pansim.model_io import FORMAT_VERSION, ModelFileError, load_model, read_model_file, save_model
from pansim.testing import model_evaluator, perturb_parameters, random_atoms

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TINY = {
    "num_channels": 8,
    "max_L": 1,
    "max_ell": 1,
    "correlation": 2,
    "num_interactions": 2,
    "num_bessel": 4,
    "radial_MLP": [8],
    "avg_num_neighbors": 6.0,
}


def _build(variant="pan+pgs", **kw):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model = build_model(
            variant=variant, elements=["Si", "O"], r_max=4.0, seed=3, **{**TINY, **kw}
        )
    finally:
        torch.set_default_dtype(previous)
    return perturb_parameters(model, scale=0.2, seed=5)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = _build()
    path = save_model(model, tmp_path_factory.mktemp("m") / "model", metadata={"run": "test"})
    return model, path


def _rewrite_header(src, dst, **changes):
    """Copy a safetensors file with its JSON header edited (the bytes layout kept valid)."""
    raw = src.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    header["__metadata__"].update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del header["__metadata__"][key]
    text = json.dumps(header).encode()
    dst.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])
    return dst


def test_round_trip_is_exact(saved):
    model, path = saved
    assert path.suffix == ".safetensors" and path.exists()
    loaded = load_model(path)
    atoms = random_atoms("Si3O2", pbc=True, seed=1, volume_per_atom=14.0)
    a, b = model_evaluator(model)(atoms), model_evaluator(loaded)(atoms)
    assert a["energy"] == b["energy"]
    assert (a["forces"] == b["forces"]).all() and (a["stress"] == b["stress"]).all()
    assert not loaded.training


def test_metadata_records_provenance(saved):
    model, path = saved
    config, meta, _ = read_model_file(path)
    assert config == json.loads(json.dumps(model.pansim_config))
    assert meta["variant"] == "pan+pgs" and meta["elements"] == ["Si", "O"]
    assert meta["r_max"] == 4.0 and meta["dtype"] == "float64"
    assert {"pansim", "torch", "mace-torch", "e3nn"} <= set(meta["versions"])
    assert meta["provenance"] == {"run": "test"}
    assert load_model(path).pansim_metadata == meta


def test_dtype_on_load(saved):
    _, path = saved
    model = load_model(path, dtype="float32")
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_atomic_overwrite_leaves_no_temporary_files(saved, tmp_path):
    model, _ = saved
    path = save_model(model, tmp_path / "m.safetensors")
    save_model(model, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_save_refuses_models_without_config(tmp_path):
    with pytest.raises(ValueError, match="pansim_config"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "x")


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "nothing.safetensors")


def test_truncated_file(saved, tmp_path):
    _, path = saved
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match=r"truncated\.safetensors.*not a readable"):
        load_model(bad)


def test_garbage_file(tmp_path):
    bad = tmp_path / "garbage.safetensors"
    bad.write_bytes(b"\x00" * 3 + b"not a model at all")
    with pytest.raises(ModelFileError, match="garbage.safetensors"):
        load_model(bad)


def test_flipped_weight_byte_fails_hash(saved, tmp_path):
    _, path = saved
    raw = bytearray(path.read_bytes())
    raw[-9] ^= 0xFF
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="hash mismatch"):
        load_model(bad)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "something"}, "not a pansim model file"),
        ({"format_version": str(FORMAT_VERSION + 1)}, "format version"),
        ({"sha256": None}, "lacks"),
        ({"config": "{not json"}, "not valid JSON"),
        ({"sha256": "0" * 64}, "hash mismatch"),
    ],
)
def test_bad_headers(saved, tmp_path, changes, message):
    _, path = saved
    bad = _rewrite_header(path, tmp_path / "bad.safetensors", **changes)
    with pytest.raises(ModelFileError, match=message) as info:
        load_model(bad)
    assert "bad.safetensors" in str(info.value)


def test_shape_mismatch(tmp_path):
    """A file whose weights do not fit the architecture its config builds."""
    small, big = _build(), _build(num_channels=16)
    big.pansim_config = small.pansim_config  # a lie: the config does not describe the weights
    with pytest.raises(ModelFileError, match=r"liar\.safetensors.*shape mismatch"):
        load_model(save_model(big, tmp_path / "liar"))


def test_weights_of_another_variant(tmp_path):
    model = _build("baseline")
    model.pansim_config = {**model.pansim_config, "variant": "pan"}
    with pytest.raises(ModelFileError, match="missing"):
        load_model(save_model(model, tmp_path / "m"))


def test_load_does_not_execute_code():
    import inspect

    import pansim.model_io as io

    source = inspect.getsource(io)
    assert "pickle" not in source.replace("no pickle", "") and "torch.load" not in source


def test_derived_coupling_tensors_are_not_written_but_restored(tmp_path):
    """MACE's U matrices are rebuilt from the config: the file holds only learned numbers."""
    from safetensors import safe_open

    model = _build(correlation=3)
    path = save_model(model, tmp_path / "c3")
    with safe_open(str(path), "pt") as f:
        keys = set(f.keys())
    derived = {k for k in model.state_dict() if ".U_matrix_" in k}
    assert derived and not derived & keys
    loaded = load_model(path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    # files written before (with the U matrices) still load: tests/test_shipped_models.py
