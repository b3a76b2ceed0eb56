"""The CLI as a user meets it: help, --version, one-line errors, run folders, provenance.

Every row of the "Bad input" table of docs/cli.md names its test here.
"""

import hashlib
import json

import pytest
from ase.build import bulk, molecule
from ase.io import read, write

from pansim.cli import COMMANDS, main

CU = bulk("Cu", "fcc", a=3.6)
WORKFLOWS = ("single", "relax", "eos", "elastic", "phonons", "md", "repulsion", "vibrations")


@pytest.fixture
def cu(tmp_path):
    path = tmp_path / "cu.extxyz"
    write(path, CU)
    return str(path)


def error_of(capsys, argv, code=2):
    """Run ``argv``; assert the exit code and a one-line error without traceback; return it."""
    try:
        got = main(argv)
    except SystemExit as exc:  # argparse usage errors
        got = exc.code
    assert got == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


# --------------------------------------------------------------------------- help, version
def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("pansim 0.")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_help_has_a_description_and_defaults(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    description = text.split("\n\n")[1]  # after the usage block
    assert "pansim" in description and not description.startswith(("options", "positional"))
    assert "--debug" in text and "--quiet" in text
    if name in WORKFLOWS:  # the model-using workflow subcommands
        assert all(opt in text for opt in ("--model", "--dtype", "--threads", "--device"))
        assert "--model MODEL" in text and "(default: si)" in text
    if name in ("validate", "eval"):
        assert "--threads" in text and "--device" in text


def test_md_help_states_units_and_the_nve_initial_temperature(capsys):
    with pytest.raises(SystemExit):
        main(["md", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "time step (fs)" in text and "target temperature (K)" in text
    assert "2 x --temperature for nve" in text


# --------------------------------------------------------------------------- bad input
def test_missing_structure_file(capsys, tmp_path):
    line = error_of(capsys, ["eos", "--model", "emt", "--structure", str(tmp_path / "no.cif")])
    assert "does not exist" in line and "no.cif" in line


def test_unreadable_structure_file(capsys, tmp_path):
    bad = tmp_path / "bad.xyz"
    bad.write_text("garbage\n")
    line = error_of(capsys, ["single", "--model", "emt", "--structure", str(bad)])
    assert "cannot read structure file" in line and "bad.xyz" in line


def test_empty_structure_file(capsys, tmp_path):
    empty = tmp_path / "empty.xyz"
    empty.write_text("0\n\n")
    line = error_of(capsys, ["single", "--model", "emt", "--structure", str(empty)])
    assert "no atoms" in line or "cannot read" in line


def test_structure_is_a_folder(capsys, tmp_path):
    line = error_of(capsys, ["relax", "--model", "emt", "--structure", str(tmp_path)])
    assert "is a folder" in line


def test_unknown_model_lists_the_registered_ones(capsys, cu):
    line = error_of(capsys, ["single", "--model", "sii", "--structure", cu])
    assert "'sii'" in line and "did you mean 'si'" in line


def test_out_is_a_file(capsys, cu, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = error_of(capsys, ["eos", "--model", "emt", "--structure", cu, "--out", str(blocker)])
    assert "not a folder" in line


def test_out_dash_is_refused_not_made_a_folder(capsys, cu, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = error_of(capsys, ["single", "--model", "emt", "--structure", cu, "--out", "-"])
    assert "'-' (standard output) is not one" in line
    assert not (tmp_path / "-").exists()


def test_out_below_a_file_is_not_writable(capsys, cu, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = str(blocker / "sub")
    line = error_of(capsys, ["md", "--model", "emt", "--structure", cu, "--out", out])
    assert "not writable" in line


def test_element_mismatch_emt(capsys, tmp_path):
    path = tmp_path / "si.extxyz"
    write(path, bulk("Si"))
    line = error_of(capsys, ["single", "--model", "emt", "--structure", str(path)])
    assert "Si" in line


def test_element_mismatch_pansim_model(capsys, tmp_path, tiny_model_factory):
    from pansim import save_model

    model_path = tmp_path / "tiny.safetensors"
    save_model(tiny_model_factory(elements=("Si",)), model_path)
    path = tmp_path / "cu.extxyz"
    write(path, CU)
    line = error_of(capsys, ["single", "--model", str(model_path), "--structure", str(path)])
    assert "Cu" in line


def test_cuda_without_cuda(capsys, cu, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    line = error_of(capsys, ["single", "--structure", cu, "--device", "cuda"])
    assert "CUDA is not available" in line


@pytest.mark.parametrize(
    "command, option, value",
    [
        ("md", "--steps", "-5"),
        ("md", "--timestep", "0"),
        ("md", "--timestep", "-1"),
        ("md", "--temperature", "-100"),
        ("md", "--temperature", "nan"),
        ("md", "--supercell", "0"),
        ("md", "--traj-every", "0"),
        ("md", "--checkpoint-every", "0"),
        ("md", "--init-temperature", "-1"),
        ("md", "--threads", "0"),
        ("eos", "--points", "3"),
        ("eos", "--strain", "1.5"),
        ("elastic", "--max-strain", "0"),
        ("elastic", "--strains", "1"),
        ("phonons", "--displacement", "-0.01"),
        ("phonons", "--mesh", "0"),
        ("relax", "--fmax", "0"),
        ("repulsion", "--points", "x"),
    ],
)
def test_bad_numeric_options_are_usage_errors(command, option, value, capsys, cu):
    extra = ["1", "1"] if option in ("--supercell", "--mesh") else []
    line = error_of(capsys, [command, "--model", "emt", "--structure", cu, option, value, *extra])
    assert option in line


def test_md_refuses_a_target_above_max_temperature(capsys, cu, tmp_path):
    argv = ["md", "--model", "emt", "--structure", cu, "--temperature", "1e6"]
    line = error_of(capsys, argv + ["--out", str(tmp_path / "hot")])
    assert "max_temperature_K" in line


def test_debug_shows_the_traceback(capsys, tmp_path):
    code = main(["eos", "--debug", "--model", "emt", "--structure", str(tmp_path / "no.cif")])
    assert code == 2
    assert "Traceback" in capsys.readouterr().err


def test_quiet_prints_nothing_on_success(capsys, cu, tmp_path):
    assert main(["single", "-q", "--model", "emt", "--structure", cu, "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# --------------------------------------------------------------------------- run folders
def test_default_out_is_a_fresh_run_folder(cu, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["single", "--model", "emt", "--structure", cu]) == 0
    assert main(["single", "--model", "emt", "--structure", cu]) == 0
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all(r.name.startswith("single-emt-") for r in runs)
    assert all((r / "single.extxyz").exists() for r in runs)


def test_failed_command_leaves_no_empty_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["single", "--model", "emt", "--structure", "missing.cif"]) == 2
    assert not list((tmp_path / "runs").glob("*"))


# --------------------------------------------------------------------------- single, relax
def test_single_writes_extxyz_read_back_by_ase(tmp_path, capsys):
    frames = [CU, CU * (2, 1, 1), molecule("H2O")]
    frames[1].rattle(0.05, seed=1)
    src = tmp_path / "in.extxyz"
    write(src, frames[:2])
    out = tmp_path / "out"
    assert main(["single", "--model", "emt", "--structure", str(src), "--out", str(out)]) == 0
    back = read(out / "single.extxyz", ":")
    assert len(back) == 2
    from ase.calculators.emt import EMT

    for orig, got in zip(frames[:2], back, strict=True):
        ref = orig.copy()
        ref.calc = EMT()
        assert got.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-6)
        assert got.get_forces() == pytest.approx(ref.get_forces(), abs=1e-6)  # extxyz: 8 decimals
        assert got.get_stress() == pytest.approx(ref.get_stress(), abs=1e-6)
        assert got.info["model_name"] == "EMT"
    data = json.loads((out / "result.json").read_text())
    assert len(data["energy_eV"]) == 2 and data["provenance"]["calculator"]["model_name"] == "EMT"


def test_relax_relaxes_positions_and_cell(tmp_path):
    start = bulk("Cu", "fcc", a=3.75) * (2, 1, 1)
    start.rattle(0.03, seed=3)
    src = tmp_path / "in.extxyz"
    write(src, start)
    out = tmp_path / "out"
    argv = ["relax", "--model", "emt", "--structure", str(src), "--out", str(out)]
    assert main(argv + ["--fmax", "0.005"]) == 0
    relaxed = read(out / "relaxed.extxyz")
    assert abs(relaxed.get_forces()).max() < 0.005
    assert abs(relaxed.get_stress()).max() * relaxed.get_volume() < 0.01
    assert relaxed.get_volume() < start.get_volume()  # EMT Cu: a = 3.59 A < 3.75 A
    assert len(read(out / "relax.extxyz", ":")) >= 2
    data = json.loads((out / "result.json").read_text())
    assert data["converged"] and data["relax_cell"]
    fixed = tmp_path / "fixed"
    assert main(argv[:-1] + [str(fixed), "--fix-cell"]) == 0
    assert read(fixed / "relaxed.extxyz").get_volume() == pytest.approx(start.get_volume())


# --------------------------------------------------------------------------- provenance
def test_provenance_in_calc_result_json_and_trajectories(tmp_path, tiny_model_factory):
    from ase.io import Trajectory

    from pansim import PANCalculator, save_model

    model_path = tmp_path / "tiny-si.safetensors"
    save_model(tiny_model_factory(elements=("Si",)), model_path)
    sha = hashlib.sha256(model_path.read_bytes()).hexdigest()
    calc = PANCalculator(model=str(model_path), keep_memory=False)
    params = calc.todict()
    assert params["model_sha256"] == sha and params["model_file"] == str(model_path.resolve())
    assert params["variant"] == "pan+pgs" and params["dtype"] == "float64"
    assert params["model_name"] == "tiny-si" and params["backbone"]

    src = tmp_path / "si.extxyz"
    write(src, bulk("Si", cubic=True))
    out = tmp_path / "md"
    argv = ["md", "--model", str(model_path), "--structure", str(src), "--steps", "4"]
    assert main(argv + ["--traj-every", "2", "--out", str(out), "--threads", "1"]) == 0
    data = json.loads((out / "result.json").read_text())
    assert data["provenance"]["calculator"]["model_sha256"] == sha
    with Trajectory(str(out / "md.traj")) as traj:
        assert traj[0].calc.parameters["model_sha256"] == sha
    frames = read(out / "md.extxyz", ":")
    assert len(frames) == 3 and frames[-1].info["model_sha256"] == sha


def test_emt_is_named_in_result_json(cu, tmp_path):
    assert main(["eos", "--model", "emt", "--structure", cu, "--out", str(tmp_path)]) == 0
    calc = json.loads((tmp_path / "result.json").read_text())["provenance"]["calculator"]
    assert calc["model_name"] == "EMT" and calc["model_sha256"] == ""


def test_progress_bars_when_enabled(cu, tmp_path, capsys, monkeypatch):
    from pansim import cli_common

    monkeypatch.setitem(cli_common.PROGRESS, "enabled", True)  # as on a terminal
    argv = ["md", "--model", "emt", "--structure", cu, "--supercell", "3", "3", "3"]
    assert main(argv + ["--steps", "5", "--out", str(tmp_path / "md")]) == 0
    assert "md nve" in capsys.readouterr().err
    assert main(["eos", "--model", "emt", "--structure", cu, "--out", str(tmp_path / "e")]) == 0
    assert "eos volumes" in capsys.readouterr().err


def test_verbose_logs_the_model(cu, tmp_path, caplog):
    import logging

    argv = ["single", "-v", "--model", "emt", "--structure", cu, "--out", str(tmp_path)]
    try:
        assert main(argv) == 0
        assert "model: {'model_name': 'EMT'" in caplog.text
    finally:
        logging.getLogger("pansim").setLevel(logging.NOTSET)
