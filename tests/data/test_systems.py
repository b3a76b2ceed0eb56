"""One System spec type: every table of systems is a view of ``pansim.data.systems.SYSTEMS``."""

import importlib
import json
import pkgutil

import numpy as np
import pytest

import pansim.data
import workflows
from pansim.data import datasets, reference, settings, systems
from pansim.data.molecule_reference import MOLECULES
from workflows import validate


def _modules(package, skip=("pansim.data.workers",)):
    """``package`` and every module below it (the labelling workers run as scripts: skipped)."""
    yield package
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not info.name.startswith(skip):
            yield importlib.import_module(info.name)


def test_every_system_name_is_the_one_spec_class():
    found = {
        module.__name__: module.System
        for package in (pansim.data, workflows)
        for module in _modules(package)
        if hasattr(module, "System")
    }
    assert {"pansim.data.systems", "pansim.data.datasets", "workflows.validate"} <= set(found)
    assert all(cls is systems.System for cls in found.values()), found


def test_every_table_of_systems_is_a_view_of_the_registry():
    for view in (datasets.SYSTEMS, validate.SYSTEMS):
        for name, spec in view.items():
            assert spec is systems.SYSTEMS[name]
    assert set(datasets.SYSTEMS) == {n for n, s in systems.SYSTEMS.items() if s.has_dataset}
    assert set(validate.SYSTEMS) == {n for n, s in systems.SYSTEMS.items() if s.kind == "crystal"}
    assert MOLECULES == tuple(n for n, s in systems.SYSTEMS.items() if s.kind == "molecule")
    # the names that used to be defined in pansim.data.settings are views too
    assert settings.CRYSTALS is systems.CRYSTALS and settings.STRUCTURES is systems.STRUCTURES
    for name, dft in settings.CRYSTALS.items():
        spec = systems.get_system(name)
        assert dft is spec.dft and settings.STRUCTURES[name] == (spec.symbol, spec.structure)
        assert spec.a == dft.lattice_constant
    with pytest.raises(AttributeError):
        settings.NOT_A_SETTING  # noqa: B018


def test_orders_and_choices_of_the_command_line_are_kept():
    assert list(datasets.SYSTEMS) == ["si", "lif", "ag", "ethanol", "malonaldehyde"]
    assert list(validate.SYSTEMS) == ["si", "ag", "lif", "ag-emt"]
    assert list(settings.CRYSTALS) == ["ag", "si", "lif"]
    with pytest.raises(KeyError, match="known: si, lif, ag, ethanol, malonaldehyde"):
        datasets.get_system("ag-emt")  # validation only: no dataset


@pytest.mark.parametrize("name", ["si", "lif", "ag"])
def test_the_dft_jobs_and_the_validation_use_the_same_cells(name):
    spec = systems.get_system(name)
    assert spec.primitive() == settings.crystal_cell(name) == validate.SYSTEMS[name].primitive()
    info, cells = reference.contact_cells(name)
    conv = spec.conventional()
    assert info["a_A"] == spec.a and cells[-1] == conv
    assert np.isclose(
        reference.primitive_at(name, spec.primitive().get_volume()).cell, spec.primitive().cell
    ).all()
    atoms = spec.sampler(1, seed=0)[0]
    job = spec.make_job(atoms)
    assert job["calc"]["ecut"] == spec.dft.ecut and job["calc"]["width"] == spec.dft.width


def test_molecules_and_the_validation_only_system():
    ethanol = systems.get_system("Ethanol")
    assert ethanol.kind == "molecule" and ethanol.split_unit == "block"
    assert ethanol.initial_geometry().get_chemical_formula() == "C2H6O"
    with pytest.raises(ValueError, match="no crystal cell"):
        ethanol.primitive()
    emt = systems.get_system("ag-emt")
    assert not emt.has_dataset and emt.dft is None and emt.liquid_K == 1600.0
    # every crystal with DFT data has a liquid run in pansim validate, above its melting point
    for name in ("si", "lif", "ag"):
        spec = systems.get_system(name)
        assert spec.liquid_K is not None and spec.liquid_K > spec.dft.melting_K, name
    assert len(emt.conventional()) == 4 and emt.conventional().cell[0, 0] == 4.064
    with pytest.raises(ValueError, match="lattice constant"):
        systems.System(
            "x",
            "crystal",
            ("Si",),
            dft=settings.CrystalSettings("x", ("Si",), 500.0, 0.3, 0.05, 5.47, 1687.0),
            symbol="Si",
            structure="diamond",
            a=5.4,
        )


def test_reference_files_come_from_the_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("PANSIM_DATA_DIR", str(tmp_path))
    spec = systems.get_system("si")
    assert reference.jobs_path("si") == spec.reference_dir() / "jobs.json"
    assert spec.reference_dir() == tmp_path / "si" / "reference"
    path = spec.reference_files()[-1]
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"system": "si", "eos": {"B0": 1.0}}))
    ref, message = validate.load_reference("si")
    assert ref["eos"]["B0"] == 1.0 and str(path) in message
    packaged = systems.get_system("ag-emt").reference_files()[0]
    assert packaged.is_file() and validate.load_reference("ag-emt")[0]["reference"] == "EMT"
