import json

import pytest

import workflows.validate as validate_mod
from pansim.cli import main
from workflows.validate import comparison_table, infer_system, load_reference

AG_REFERENCE = {
    "system": "ag",
    "eos": {
        "V0": 17.99,
        "E0": -2.8,
        "B0": 90.4,
        "B0_prime": 5.6,
        "compressed": {"volume_ratio": [0.8, 0.85, 0.9], "energy": [-2.5, -2.65, -2.75]},
    },
    "elastic": {"C11": 111.0, "C12": 82.0, "C44": 45.0},
    "phonons": {"gamma_THz": [0, 0, 0], "X_THz": [3.4, 3.4, 4.6], "L_THz": [1.9, 1.9, 4.6]},
    "repulsion": {"r": [1.8, 2.2, 2.6, 2.94], "energy": [6.0, 2.0, 0.4, 0.0]},
}


@pytest.fixture
def reference(tmp_path):
    path = tmp_path / "refs" / "ag.json"
    path.parent.mkdir()
    path.write_text(json.dumps(AG_REFERENCE))
    return path.parent


def test_validate_emt_partial_report_without_baseline(reference, tmp_path, capsys):
    out = tmp_path / "val"
    code = main(
        [
            "validate",
            "emt",
            "--system",
            "ag",
            "--quick",
            "--references",
            str(reference),
            "--out",
            str(out),
            "--skip",
            "md",
            "--baseline",  # not registered and not a file: the report goes on without it
            "emt-baseline",
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["baseline"] == "emt-baseline"
    assert any("emt-baseline" in m and "could not be loaded" in m for m in report["messages"])
    rows = {r["quantity"]: r for r in report["table"]}
    assert rows["B0"]["dft"] == 90.4 and rows["B0"]["model"] > 0 and rows["B0"]["baseline"] is None
    assert rows["B0"]["model_error"] == pytest.approx(rows["B0"]["model"] - 90.4)
    assert rows["softening ratio (1 = DFT)"]["model"] > 0
    assert rows["E(0.80 V0) - E0"]["dft"] == pytest.approx(0.3)
    assert rows["E(0.80 V0) - E0"]["model"] > 0.1
    assert rows["liquid closest approach"]["model"] > 1.5
    assert "max freq. Gamma" not in rows and rows["max freq. X"]["dft"] == 4.6  # 1-atom cell
    assert any("max freq. Gamma left out" in m for m in report["messages"])
    text = (out / "report.md").read_text()
    assert "| quantity | unit | DFT | baseline | model |" in text and "%)" in text
    assert "![phonons](model/phonons.png)" in text and (out / "model" / "phonons.png").exists()
    assert "could not be loaded" in capsys.readouterr().out


def test_validate_without_reference_with_both_models(tmp_path):
    report = validate_mod.validate(
        "emt",
        "ag",
        out=tmp_path,
        baseline="emt",
        references=tmp_path / "none",
        quick=True,
        skip=("elastic", "phonons", "md", "repulsion"),
    )
    assert any("no DFT reference" in m for m in report["messages"])
    rows = {r["quantity"]: r for r in report["table"]}
    assert rows["V0"]["dft"] is None and rows["V0"]["model"] and rows["V0"]["baseline"]
    assert rows["V0"]["model_error"] is None


def test_no_model_and_empty_registry_exits_with_instructions(monkeypatch, capsys):
    monkeypatch.setattr(validate_mod, "registry_models", lambda: ([], None, "registry is empty"))
    assert main(["validate"]) == 2
    err = capsys.readouterr().err
    assert "registry is empty" in err and "pansim validate" in err


def test_liquid_is_skipped_where_undefined(tmp_path):
    import dataclasses

    no_liquid = dataclasses.replace(validate_mod.SYSTEMS["lif"], liquid_K=None)
    with pytest.raises(validate_mod.Skipped, match="no liquid temperature defined for lif"):
        validate_mod._run_liquid(no_liquid, None, validate_mod.QUICK, tmp_path, {})


def test_helpers(tmp_path):
    assert infer_system("pan-si-v1") == "si" and infer_system("models/LiF_pan.pt") == "lif"
    assert infer_system("mystery") is None
    data, message = load_reference("si", tmp_path)
    assert data == {} and "no DFT reference" in message
    rows = comparison_table({}, None, None)
    assert all(r["model"] is None and r["dft"] is None for r in rows)


def test_gamma_optical_row_only_for_cells_with_optical_modes():
    names = [r["quantity"] for r in comparison_table(AG_REFERENCE, None, None, 1)]
    assert "max freq. Gamma" not in names and {"max freq. X", "max freq. L"} <= set(names)
    names = [r["quantity"] for r in comparison_table(AG_REFERENCE, None, None, 2)]
    assert "max freq. Gamma" in names
    assert len(comparison_table(AG_REFERENCE, None, None)) == len(validate_mod.QUANTITIES)
    assert len(validate_mod.SYSTEMS["ag"].primitive()) == 1
    assert len(validate_mod.SYSTEMS["si"].primitive()) == 2


def test_default_reference_is_the_dft_pipelines_properties_file(tmp_path, monkeypatch):
    path = tmp_path / "si" / "reference" / "properties.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"system": "si", "reference": "DFT", "eos": {"B0": 88.0}}))
    monkeypatch.setenv("PANSIM_DATA_DIR", str(tmp_path))
    ref, message = load_reference("si")
    assert ref["eos"]["B0"] == 88.0 and str(path) in message
    assert load_reference("si", tmp_path)[0] == ref  # --references data/
    ref, message = load_reference("ag-emt")  # shipped, not from the pipeline
    assert ref["reference"] == "EMT"


def test_dft_systems_have_one_source_of_truth():
    """si/ag/lif references come only from data/<system>/reference, never the package."""
    shipped = {p.stem for p in validate_mod.default_reference_dir().glob("*.json")}
    assert not shipped & {"si", "ag", "lif"}


def test_a_model_that_is_its_own_baseline_is_evaluated_once(tmp_path):
    """A name serving the baseline architecture: one evaluation, both columns, said so."""
    from pansim.pretrained import get_model_path

    path = get_model_path("ag-emt-demo-baseline")
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(path.read_bytes())
    assert validate_mod.same_model_file("ag-emt-demo-baseline", str(copy))
    assert not validate_mod.same_model_file("ag-emt-demo", "ag-emt-demo-baseline")
    assert not validate_mod.same_model_file("ag-emt-demo", "no-such-model")
    skip = ("elastic", "phonons", "md", "repulsion", "liquid")
    report = validate_mod.validate(
        "ag-emt-demo-baseline", "ag-emt", out=tmp_path / "v", baseline=str(copy), quick=True,
        skip=skip,
    )  # fmt: skip
    assert report["baseline_is_model"]
    assert any("the same model file" in m for m in report["messages"])
    rows = {r["quantity"]: r for r in report["table"]}
    assert rows["V0"]["model"] == rows["V0"]["baseline"] is not None
    assert not (tmp_path / "v" / "baseline").exists()  # evaluated once
    text = (tmp_path / "v" / "report.md").read_text()
    assert "## Plots: baseline" not in text and "## Plots: model" in text
