"""Molecule validation end to end: EMT as the 'DFT', a softened EMT as the baseline."""

import json

import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.emt import EMT
from ase.io import write

from pansim.data import molecule_reference as mr
from pansim.data.labelers import dict_to_atoms
from workflows.molecule_reference import compute_reference
from workflows.validate_molecule import QUICK_MOLECULE, in_box, validate_molecule

SCALE = 0.9


class SoftEMT(EMT):
    """EMT with every energy and force scaled by ``SCALE``: frequencies x sqrt(SCALE)."""

    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        for key in ("energy", "free_energy", "energies", "forces"):
            if key in self.results:
                self.results[key] = self.results[key] * SCALE


def emt_point(job):
    atoms = dict_to_atoms(job["atoms"])
    atoms.calc = EMT()
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    return {"ok": True, "code": "emt", "energy": energy, "forces": forces.tolist()}


@pytest.fixture(scope="module")
def emt_reference(tmp_path_factory):
    """Reference files of CH3OH made by the real reference pipeline with EMT as the 'DFT'."""
    root = tmp_path_factory.mktemp("data")
    compute_reference("methanol", root, start=molecule("CH3OH"), evaluate=emt_point, log=None)
    return mr.reference_dir("methanol", root)


@pytest.fixture
def test_set(tmp_path):
    frames = []
    for seed in range(3):
        atoms = molecule("CH3OH")
        atoms.rattle(0.03, seed=seed)
        atoms.calc = EMT()
        atoms.info["REF_energy"] = atoms.get_potential_energy()
        atoms.arrays["REF_forces"] = atoms.get_forces()
        atoms.calc = None
        frames.append(atoms)
    write(tmp_path / "test.extxyz", frames)
    return tmp_path / "test.extxyz"


def test_model_equal_to_reference_and_soft_baseline(emt_reference, test_set, tmp_path):
    out = tmp_path / "val"
    report = validate_molecule(
        "emt", SoftEMT(), "methanol", out, references=emt_reference, test_file=test_set, quick=True
    )
    assert not [m for m in report["messages"] if "failed" in m]
    rows = {r["quantity"]: r for r in report["table"]}
    assert rows["harmonic freq. MAE vs DFT"]["model"] < 2.0
    high = rows["highest freq. (error = its shift)"]
    assert high["baseline_error"] == pytest.approx((np.sqrt(SCALE) - 1) * high["dft"], rel=0.02)
    assert rows["harmonic freq. mean signed error (- = red shift)"]["baseline"] < 0
    soft = [r for q, r in rows.items() if q.endswith("softening ratio (1 = DFT)")]
    assert len(soft) == 2
    assert all(
        r["model"] == pytest.approx(1.0) and r["baseline"] == pytest.approx(SCALE) for r in soft
    )
    rise = next(r for q, r in rows.items() if "E rise at 0.70 r0" in q)
    assert rise["dft"] > 0 and rise["model_error"] == pytest.approx(0.0, abs=1e-9)
    assert rows["NVE steps completed"]["model"] == QUICK_MOLECULE.md_steps
    assert abs(rows["NVE drift"]["model"]) < 5.0
    assert rows["test energy MAE"]["model"] < 1e-3 < rows["test energy MAE"]["baseline"]
    assert rows["test force MAE"]["baseline"] > 10.0
    saved = json.loads((out / "report.json").read_text())
    assert saved["kind"] == "molecule" and saved["table"] == json.loads(json.dumps(report["table"]))
    assert "hessian_eV_per_A2" not in saved["reference"]["vibrations"]
    text = (out / "report.md").read_text()
    assert "| quantity | unit | DFT | baseline | model |" in text and "red shift" in text
    for label in ("model", "baseline"):
        for name in ("vibrations", "repulsion", "md", "test_errors"):
            assert (out / label / f"{name}.png").stat().st_size > 1000
            assert f"![{name}]({label}/{name}.png)" in text


def test_fake_reference_dict_missing_baseline_and_no_test_set(tmp_path):
    start = molecule("H2O")
    fake = {"vibrations": {"frequencies_cm1": [1500.0, 3600.0, 3700.0], "imaginary_cm1": []}}
    report = validate_molecule(
        "emt",
        "no-such-model",
        "water",
        tmp_path,
        references=fake,
        start=start,
        test_file=tmp_path / "none.extxyz",
        quick=True,
        skip=("md",),
    )
    assert any("no-such-model" in m and "could not be loaded" in m for m in report["messages"])
    assert any("test_errors skipped" in m for m in report["messages"])
    assert any("no DFT repulsion reference" in m for m in report["messages"])
    rows = {r["quantity"]: r for r in report["table"]}
    assert rows["highest freq. (error = its shift)"]["dft"] == 3700.0
    assert rows["harmonic freq. MAE vs DFT"]["model"] > 0
    assert rows["harmonic freq. MAE vs DFT"]["baseline"] is None
    assert "md" not in report["results"]["model"]
    assert np.array_equal(start.positions, molecule("H2O").positions)


def test_in_box_is_a_centred_non_periodic_copy():
    atoms = molecule("CH3OH")
    boxed = in_box(atoms, 10.0)
    assert not boxed.pbc.any() and boxed.cell.volume > 0 and atoms.cell.volume == 0
    assert np.allclose(boxed.get_all_distances(), atoms.get_all_distances())


def test_validate_dispatches_molecules_and_infers_their_names():
    from workflows import validate as v
    from workflows.validate_molecule import MOLECULE_WORKFLOWS

    assert set(v.MOLECULE_WORKFLOW_NAMES) == set(MOLECULE_WORKFLOWS)
    assert v.infer_system("ethanol-baseline") == "ethanol"
    assert v.infer_system("runs/malonaldehyde_pan+pgs.safetensors") == "malonaldehyde"
    parser = __import__("argparse").ArgumentParser()
    v.register(parser)
    args = parser.parse_args(["m.safetensors", "--system", "ethanol", "--skip", "vibrations"])
    assert args.system == "ethanol" and args.skip == ["vibrations"]


def test_validate_routes_a_molecule_to_validate_molecule(monkeypatch, tmp_path):
    import workflows.validate_molecule as vm
    from workflows import validate as v

    seen = {}
    monkeypatch.setattr(vm, "validate_molecule", lambda *a, **kw: seen.update(args=a, kw=kw))
    v.validate("m", "ethanol", out=tmp_path, quick=True, skip=("md",))
    assert seen["args"] == ("m", None, "ethanol", tmp_path)
    assert seen["kw"]["quick"] is True and seen["kw"]["skip"] == ("md",)
