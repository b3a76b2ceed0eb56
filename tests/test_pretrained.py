import json

import numpy as np
import pytest
from ase.build import bulk

import pansim.pretrained as pre
from pansim.backbones import VARIANTS


def _install(tmp_path, monkeypatch, registry):
    (tmp_path / "registry.json").write_text(json.dumps(registry))
    monkeypatch.setattr(pre, "HERE", tmp_path)
    monkeypatch.setattr(pre, "REGISTRY", tmp_path / "registry.json")
    pre._registry.cache_clear()


@pytest.fixture
def registry(tmp_path, monkeypatch):
    reg = {
        "si": {
            "file": "si.safetensors",
            "card": "si.md",
            "system": "si",
            "variant": "pan+pgs",
            "baseline": "si-baseline",
        },
        "si-baseline": {"file": "b.safetensors", "system": "si", "variant": "baseline"},
    }
    _install(tmp_path, monkeypatch, reg)
    (tmp_path / "si.md").write_text("# si card")
    yield reg
    pre._registry.cache_clear()


def test_registry_lookup(registry, tmp_path):
    assert pre.list_models() == ["si", "si-baseline"]
    assert pre.get_model_path("si") == tmp_path / "si.safetensors"
    assert pre.model_entry("si")["baseline"] == "si-baseline"
    assert pre.model_card("si") == "# si card"
    assert pre.model_card("si-baseline") == ""
    assert pre.default_model() == "si"


def test_default_flag_wins(tmp_path, monkeypatch):
    reg = {"a": {"file": "a", "variant": "pan+pgs"}, "b": {"file": "b", "default": True}}
    _install(tmp_path, monkeypatch, reg)
    assert pre.default_model() == "b"
    _install(tmp_path, monkeypatch, {})
    assert pre.list_models() == [] and pre.default_model() is None
    pre._registry.cache_clear()


def test_unknown_name_lists_registered(registry):
    for lookup in (pre.get_model_path, pre.model_card, pre.model_entry):
        with pytest.raises(pre.UnknownModelError, match="'ag'; registered: si, si-baseline"):
            lookup("ag")


def test_unknown_name_suggests_the_closest_registered_one(registry, tmp_path, capsys):
    from pansim.cli import main

    with pytest.raises(pre.UnknownModelError, match=r"\(did you mean 'si-baseline'\?\)"):
        pre.model_file("si-basline")
    with pytest.raises(pre.UnknownModelError, match="'xyz' is neither.*; registered: si"):
        pre.model_file("xyz")  # nothing close: no suggestion
    assert pre.model_file("si") == tmp_path / "si.safetensors"
    assert pre.model_file(tmp_path / "si.md") == tmp_path / "si.md"  # an existing path
    # pansim eval reports it as bad input, not a traceback
    assert main(["eval", "si-basline", str(tmp_path / "none.extxyz")]) == 2
    assert "did you mean 'si-baseline'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        (json.dumps({"x": {"card": "x.md"}}), "entry 'x' needs a 'file'"),
        (json.dumps({"x": {"file": "x", "variant": "magic"}}), "unknown variant 'magic'"),
    ],
)
def test_malformed_registry(tmp_path, monkeypatch, text, match):
    _install(tmp_path, monkeypatch, {})
    (tmp_path / "registry.json").write_text(text)
    with pytest.raises(pre.RegistryError, match=match):
        pre.list_models()
    pre._registry.cache_clear()


def test_variants_in_sync_with_backbones():
    assert pre._VARIANTS == VARIANTS


def test_shipped_registry_is_valid_and_complete():
    pre._registry.cache_clear()
    for name in pre.list_models():
        assert pre.get_model_path(name).exists(), name
        entry = pre.model_entry(name)
        if entry.get("baseline"):
            assert entry["baseline"] in pre.list_models(), name


def test_models_cli(registry, capsys, tmp_path):
    from pansim.cli import main

    (tmp_path / "si.safetensors").write_bytes(b"")
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "system", "variant", "baseline", "file"]
    assert lines[1].split() == ["si", "si", "pan+pgs", "si-baseline", "ok", "(default)"]
    assert lines[2].split() == ["si-baseline", "si", "baseline", "MISSING"]
    assert main(["models", "si"]) == 0
    assert capsys.readouterr().out.strip() == "# si card"
    assert main(["models", "ag"]) == 2
    assert "registered: si, si-baseline" in capsys.readouterr().err


def test_models_cli_columns_fit_long_names(tmp_path, monkeypatch, capsys):
    from pansim.cli import main

    long = "malonaldehyde-baseline-with-a-longer-name"
    reg = {
        "m": {"file": "m.safetensors", "system": "malonaldehyde", "variant": "pan+pgs",
              "baseline": long},
        long: {"file": "b.safetensors", "system": "malonaldehyde", "variant": "baseline"},
    }  # fmt: skip
    _install(tmp_path, monkeypatch, reg)
    try:
        assert main(["models"]) == 0
    finally:
        pre._registry.cache_clear()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines] == [
        ["name", "system", "variant", "baseline", "file"],
        ["m", "malonaldehyde", "pan+pgs", long, "MISSING", "(default)"],  # the only pan+pgs
        [long, "malonaldehyde", "baseline", "MISSING"],
    ]
    start = lines[0].index("file")  # every row's file column starts at the same place
    assert [line[start:].split()[0] for line in lines[1:]] == ["MISSING", "MISSING"]


def test_calculator_loads_registered_name(registry, tmp_path, tiny_model_factory, one_torch_thread):
    import pansim
    from pansim.calculator import PANCalculator

    model = tiny_model_factory()
    pansim.save_model(model, tmp_path / "si.safetensors")
    atoms = bulk("Si", "diamond", 5.43)
    atoms.calc = PANCalculator(model="si")
    reference = atoms.copy()
    reference.calc = PANCalculator(model=model)
    assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(), 1e-12)
    np.testing.assert_allclose(atoms.get_forces(), reference.get_forces(), atol=1e-12)
