import json

import pytest
from ase.build import bulk
from ase.io import write

import workflows._common as common
from pansim.cli import main


@pytest.fixture
def structure(tmp_path):
    path = tmp_path / "cu.extxyz"
    write(path, bulk("Cu", "fcc", a=3.6))
    return str(path)


def run_cli(argv, out):
    code = main(argv + ["--out", str(out)])
    data = json.loads((out / "result.json").read_text())
    assert (out / "plot.png").stat().st_size > 1000
    return code, data


def test_eos_cli_writes_result_json(structure, tmp_path):
    code, data = run_cli(
        ["eos", "--model", "emt", "--structure", structure, "--points", "9"], tmp_path / "eos"
    )
    assert code == 0
    assert {"V0", "E0", "B0", "B0_prime", "fit_rms_residual", "units", "provenance"} <= set(data)
    assert data["units"]["V0"] == "A^3/atom" and 120 < data["B0"] < 150
    assert data["provenance"]["inputs"]["n_points"] == 9


def test_elastic_cli(structure, tmp_path):
    code, data = run_cli(
        ["elastic", "--model", "emt", "--structure", structure, "--strains", "2"], tmp_path / "el"
    )
    assert code == 0
    assert len(data["C"]) == 6 and all(len(row) == 6 for row in data["C"])
    assert data["bulk_modulus_vrh"] > 0 and data["shear_modulus_vrh"] > 0


def test_phonons_cli(structure, tmp_path):
    code, data = run_cli(
        ["phonons", "--model", "emt", "--structure", structure, "--mesh", "4", "4", "4"],
        tmp_path / "ph",
    )
    assert code == 0
    assert data["gamma_frequencies_THz"] == sorted(data["gamma_frequencies_THz"])
    assert data["imaginary_modes"] == []


def test_md_cli_and_restart(structure, tmp_path):
    argv = [
        "md",
        "--model",
        "emt",
        "--structure",
        structure,
        "--supercell",  # 27 atoms: half the cell width (3.1 A) is past the first RDF peak
        "3",
        "3",
        "3",
        "--steps",
        "20",
        "--checkpoint-every",
        "10",
        "--traj-every",
        "5",
    ]
    code, data = run_cli(argv, tmp_path / "md")
    assert code == 0
    assert data["drift_meV_per_atom_per_ps"] is not None and data["rdf_first_peak_A"] > 2.0
    argv[argv.index("20")] = "30"
    code, data = run_cli(argv, tmp_path / "md")
    assert data["restarted_from_step"] == 20 and data["steps_done"] == 30


def test_repulsion_cli(structure, tmp_path):
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"r": [1.6, 2.0, 2.4], "energy": [3.0, 1.0, 0.1]}))
    code, data = run_cli(
        ["repulsion", "--model", "emt", "--structure", structure, "--reference", str(ref)],
        tmp_path / "rep",
    )
    assert code == 0 and data["softening_ratio"] is not None and data["rmse_eV"] >= 0


def test_elastic_cli_without_stress_exits_cleanly(structure, tmp_path, monkeypatch, capsys):
    from ase.calculators.emt import EMT

    class NoStress(EMT):
        implemented_properties = ["energy", "forces"]

    monkeypatch.setitem(common.BUILTIN_CALCULATORS, "nostress", lambda **_: NoStress())
    assert (
        main(["elastic", "--model", "nostress", "--structure", structure, "--out", str(tmp_path)])
        == 2
    )
    assert "stress" in capsys.readouterr().out


def test_yaml_config_with_command_line_override(structure, tmp_path):
    config = tmp_path / "eos.yaml"
    config.write_text(f"model: emt\nstructure: {structure}\npoints: 9\nstrain: 0.03\n")
    out = tmp_path / "cfg"
    assert main(["eos", "--config", str(config), "--strain", "0.05", "--out", str(out)]) == 0
    inputs = json.loads((out / "result.json").read_text())["provenance"]["inputs"]
    assert inputs["n_points"] == 9 and inputs["strain"] == 0.05


def test_missing_structure_is_a_clear_error(tmp_path, capsys):
    assert main(["eos", "--model", "emt", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--structure" in err and "Traceback" not in err
