import json

import pytest

import pansim.pretrained as pre


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
    (tmp_path / "registry.json").write_text(json.dumps(reg))
    (tmp_path / "si.md").write_text("# si card")
    monkeypatch.setattr(pre, "HERE", tmp_path)
    monkeypatch.setattr(pre, "REGISTRY", tmp_path / "registry.json")
    pre._registry.cache_clear()
    yield reg
    pre._registry.cache_clear()


def test_registry_lookup(registry, tmp_path):
    assert pre.list_models() == ["si", "si-baseline"]
    assert pre.get_model_path("si") == tmp_path / "si.safetensors"
    assert pre.model_card("si") == "# si card"
    assert pre.model_card("si-baseline") == ""
    assert pre.default_model() == "si"


def test_unknown_name_lists_registered(registry):
    with pytest.raises(pre.UnknownModelError, match="registered: si, si-baseline"):
        pre.get_model_path("ag")


def test_shipped_registry_entries_exist():
    pre._registry.cache_clear()
    for name in pre.list_models():
        assert pre.get_model_path(name).exists(), name


def test_models_cli(registry, capsys):
    from pansim.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "si-baseline" in out and "(default)" in out
