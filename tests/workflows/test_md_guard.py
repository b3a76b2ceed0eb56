"""MD folders (fingerprint, lock), early stops, RDF range, extxyz; phonopy files; validate."""

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import Trajectory, read, write

from pansim.cli import main
from workflows._md_guard import RunFolderError, folder_lock, perpendicular_widths, rdf_range
from workflows.md import MDConfig, run_md

CU27 = bulk("Cu", "fcc", a=3.6) * (3, 3, 3)  # half its perpendicular width: 3.1 A


def short(out, **kw):
    options = dict(ensemble="nve", steps=10, temperature_K=300, traj_every=5, outdir=out)
    return run_md(CU27, EMT(), **{**options, **kw})


def test_rerun_with_other_inputs_is_refused_and_restart_fresh_discards(tmp_path):
    first = short(tmp_path)
    assert first.status == "completed"
    for change in ({"timestep_fs": 2.0}, {"temperature_K": 500.0}, {"seed": 1}):
        with pytest.raises(RunFolderError, match="other inputs") as err:
            short(tmp_path, **change)
        assert next(iter(change)) in str(err.value)
    with pytest.raises(RunFolderError, match="structure"):
        run_md(CU27 * (1, 1, 2), EMT(), steps=10, outdir=tmp_path, traj_every=5)
    fresh = short(tmp_path, timestep_fs=2.0, restart=False)
    assert fresh.restarted_from_step is None and fresh.timestep_fs == 2.0
    recorded = json.loads((tmp_path / "inputs.json").read_text())
    assert recorded["inputs"]["config"]["timestep_fs"] == 2.0


def test_finished_run_is_extended_not_redone(tmp_path):
    short(tmp_path)  # 10 steps, checkpoint_every 100: the end is checkpointed anyway
    longer = short(tmp_path, steps=15)
    assert longer.restarted_from_step == 10 and longer.steps_done == 15
    with Trajectory(str(tmp_path / "md.traj")) as traj:
        assert len(traj) == 4  # steps 0, 5, 10, 15
    assert len(read(tmp_path / "md.extxyz", ":")) == 4


def test_a_locked_folder_is_refused(tmp_path):
    with folder_lock(tmp_path):
        with pytest.raises(RunFolderError, match="in use"):
            short(tmp_path)
    assert short(tmp_path).status == "completed"  # the lock is gone with its holder


def test_close_contact_stops_the_run_and_keeps_frames(tmp_path):
    # fcc Cu nearest neighbours at 2.55 A: at 2000 K some pair soon comes closer than 2.3 A
    res = short(tmp_path, steps=200, temperature_K=2000.0, min_distance_A=2.3, traj_every=1)
    assert res.status == "blown_up" and "closer than min_distance_A" in res.stop_reason
    assert res.steps_done < 200
    with Trajectory(str(tmp_path / "md.traj")) as traj:
        assert len(traj) == res.steps_done + 1  # every step's frame, the stopping one included


def test_temperature_cap(tmp_path):
    with pytest.raises(ValueError, match="max_temperature_K"):
        short(tmp_path, temperature_K=50_000.0)
    with pytest.raises(ValueError, match="max_temperature_K"):
        short(tmp_path, temperature_K=300.0, init_temperature_K=1e6)
    # 27 atoms at 950 K fluctuate by about +-150 K: the 1000 K cap stops the run
    hot = short(
        tmp_path,
        ensemble="langevin",
        friction_per_fs=0.05,
        steps=300,
        temperature_K=950.0,
        max_temperature_K=1000.0,
    )
    assert hot.status == "blown_up" and "exceeds max_temperature_K" in hot.stop_reason


@pytest.mark.parametrize(
    "option, value",
    [
        ("steps", -5),
        ("timestep_fs", 0.0),
        ("timestep_fs", -1.0),
        ("temperature_K", -100.0),
        ("traj_every", 0),
        ("checkpoint_every", 0),
        ("init_temperature_K", float("nan")),
    ],
)
def test_bad_md_options_raise_before_anything_runs(option, value, tmp_path):
    with pytest.raises(ValueError, match=option):
        short(tmp_path, **{option: value})
    assert not (tmp_path / "md.traj").exists()


def test_zero_atoms_is_an_error():
    with pytest.raises(ValueError, match="at least one atom"):
        run_md(CU27[:0], EMT(), steps=1)


def test_rdf_range_is_capped_with_a_warning(tmp_path):
    small = bulk("Cu", "fcc", a=3.6, cubic=True)  # width 3.6 A
    assert rdf_range(small, 6.0)[0] == pytest.approx(1.8)
    assert perpendicular_widths(bulk("Cu", "fcc", a=3.6)) == pytest.approx([3.6 / np.sqrt(3)] * 3)
    res = run_md(small * (2, 2, 2), EMT(), steps=5, temperature_K=300)  # width 7.2 A
    assert max(res.rdf_r_A) <= 3.6 and any("capped at 3.600 A" in w for w in res.warnings)
    assert res.rdf_first_peak_A == pytest.approx(3.6 / np.sqrt(2), abs=0.1)
    tiny = run_md(bulk("Cu", "fcc", a=3.6) * (2, 2, 2), EMT(), steps=5)  # half width 2.08 A
    assert tiny.rdf_first_peak_A is None  # no neighbour inside the range: no false peak


def test_md_config_check_default_is_valid():
    MDConfig().check()


# --------------------------------------------------------------------------- CLI
@pytest.fixture
def cu_file(tmp_path):
    path = tmp_path / "cu.extxyz"
    write(path, bulk("Cu", "fcc", a=3.6))
    return str(path)


def test_md_cli_refuses_other_inputs_then_restart_fresh(cu_file, tmp_path, capsys):
    out = str(tmp_path / "md")
    argv = ["md", "--model", "emt", "--structure", cu_file, "--supercell", "3", "3", "3"]
    argv += ["--steps", "6", "--traj-every", "3", "--out", out]
    assert main(argv) == 0
    data = json.loads((tmp_path / "md" / "result.json").read_text())
    assert data["provenance"]["inputs"]["init_temperature_K"] == 600.0  # NVE: 2T
    capsys.readouterr()
    assert main(argv + ["--temperature", "500"]) == 2
    err = capsys.readouterr().err
    assert "other inputs" in err and "temperature_K 300.0 -> 500.0" in err
    assert main(argv + ["--temperature", "500", "--restart-fresh"]) == 0
    assert main(argv + ["--ensemble", "langevin", "--overwrite"]) == 0
    data = json.loads((tmp_path / "md" / "result.json").read_text())
    assert data["provenance"]["inputs"]["init_temperature_K"] == 300.0  # thermostat: T


def test_phonons_cli_writes_phonopy_files_read_by_phonopy(cu_file, tmp_path):
    import phonopy

    out = tmp_path / "ph"
    argv = ["phonons", "--model", "emt", "--structure", cu_file, "--mesh", "4", "4", "4"]
    assert main(argv + ["--out", str(out)]) == 0
    data = json.loads((out / "result.json").read_text())
    assert data["relaxation"]["cell"] is True and "residual_stress_GPa" in data["relaxation"]
    ph = phonopy.load(out / "phonopy.yaml", symmetrize_fc=False)
    ph.auto_band_structure(npoints=51)
    theirs = np.concatenate(ph.get_band_structure_dict()["frequencies"])
    ours = np.concatenate([np.array(s) for s in data["band_frequencies_THz"]])
    assert np.allclose(theirs, ours, atol=1e-4)
    assert theirs.max() > 5.0  # real bands, not zeros
    assert (out / "band.yaml").stat().st_size > 1000 and (out / "FORCE_CONSTANTS").exists()


def test_elastic_warns_about_residual_stress_without_relaxation(tmp_path):
    path = tmp_path / "cu.extxyz"
    write(path, bulk("Cu", "fcc", a=3.7, cubic=True))  # EMT a0 = 3.59 A: under tension
    out = tmp_path / "el"
    argv = ["elastic", "--model", "emt", "--structure", str(path), "--strains", "2"]
    assert main(argv + ["--no-relax", "--out", str(out)]) == 0
    data = json.loads((out / "result.json").read_text())
    stress = data["relaxation"]["residual_stress_GPa"]
    assert min(stress[:3]) > 1.0  # ASE sign: tensile is positive
    assert any("residual stress" in w for w in data["warnings"])


# --------------------------------------------------------------------------- validate
VALIDATE = ["validate", "emt", "--system", "ag-emt", "--quick", "--baseline", "emt"]
SKIP = ["--skip", "elastic", "phonons", "md", "liquid", "repulsion"]


def test_validate_prints_progress_and_the_table_into_a_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(VALIDATE + SKIP) == 0
    out = capsys.readouterr().out
    assert "[1/1] model/eos ..." in out and "[1/1] baseline/eos done in" in out
    assert "quantity" in out and "B0" in out and "model err" in out
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("validate-emt-") and (run / "report.md").exists()
    assert not (tmp_path / "results").exists()
    assert main(VALIDATE + SKIP + ["--update-reference"]) == 0
    assert (tmp_path / "results" / "validate" / "emt" / "report.json").exists()
