"""The shipped models: registry entries load, cards match ``pansim eval``, references load.

Every registered model must load through ``PANCalculator`` in a fresh interpreter
(nothing but the installed package and the shipped files), ``pansim eval`` on the
committed test split must reproduce the test metrics written in the model card
(``<name>.json`` beside the model, key ``test_metrics``), and the EMT reference
properties used by ``pansim validate`` for the demo system must load with the
keys validate reads.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pansim.pretrained as pre

ROOT = Path(__file__).resolve().parents[1]
MODELS = pre.list_models()
REFERENCE = ROOT / "pansim" / "data" / "reference" / "properties" / "ag-emt.json"


def _card_json(name):
    path = pre.HERE / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def test_registry_has_a_default_with_its_baseline():
    if not MODELS:
        pytest.skip("no model registered")
    default = pre.default_model()
    assert default in MODELS
    entry = pre.model_entry(default)
    assert entry.get("baseline") in MODELS
    for name in MODELS:
        entry = pre.model_entry(name)
        assert pre.get_model_path(name).is_file(), name
        assert pre.get_model_path(name).stat().st_size < 2_000_000, name
        if entry.get("card"):
            assert pre.model_card(name).strip(), name


@pytest.mark.skipif(not MODELS, reason="no model registered")
def test_every_registered_model_loads_in_a_fresh_interpreter():
    code = (
        "import json, sys\n"
        "import numpy as np\n"
        "from ase.build import bulk\n"
        "from ase.io import read\n"
        "from pansim import PANCalculator\n"
        "CRYSTALS = {'ag-emt': ('Ag', 'fcc', 4.06), 'ag': ('Ag', 'fcc', 4.16),\n"
        "            'si': ('Si', 'diamond', 5.47), 'lif': ('LiF', 'rocksalt', 4.07)}\n"
        "out = {}\n"
        "for arg in sys.argv[1:]:\n"
        "    name, system = arg.split('=')\n"
        "    if system in CRYSTALS:\n"
        "        sym, kind, a = CRYSTALS[system]\n"
        "        atoms = bulk(sym, kind, a=a, cubic=True)\n"
        "        atoms.rattle(0.05, seed=1)\n"
        "    else:  # a molecule: the first labelled frame of its dataset\n"
        "        atoms = read(f'data/{system}/{system}.extxyz', index=0)\n"
        "    atoms.calc = PANCalculator(model=name)\n"
        "    e = atoms.get_potential_energy(); f = atoms.get_forces()\n"
        "    s = atoms.get_stress() if atoms.pbc.all() else np.zeros(6)\n"
        "    out[name] = bool(np.isfinite(e) and np.isfinite(f).all() and np.isfinite(s).all())\n"
        "print(json.dumps(out))\n"
    )
    systems = [f"{name}={pre.model_entry(name).get('system', 'ag-emt')}" for name in MODELS]
    proc = subprocess.run(
        [sys.executable, "-c", code, *systems],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == {name: True for name in MODELS}


CARDED = [n for n in MODELS if (_card_json(n) or {}).get("test_metrics")]


@pytest.mark.parametrize("name", CARDED)
def test_pansim_eval_reproduces_the_card_metrics(name, capsys):
    from pansim.cli import main

    card = _card_json(name)
    test_file = ROOT / card["data"]["test_file"]
    assert test_file.is_file(), test_file
    assert main(["eval", name, str(test_file), "--json"]) == 0
    printed = capsys.readouterr().out
    measured = json.loads(printed[printed.find("{") :])
    written = card["test_metrics"]
    for key in ("energy_per_atom", "forces", "stress"):
        for stat in ("mae", "rmse"):
            if written[key][stat] is None:  # no such label (molecules carry no stress)
                assert measured[key][stat] is None, (key, stat)
                continue
            assert measured[key][stat] == pytest.approx(written[key][stat], rel=1e-6), (key, stat)
    assert measured["n_structures"] == written["n_structures"]


def test_demo_reference_properties_load_with_the_validate_schema():
    from workflows.validate import QUANTITIES, SYSTEMS, comparison_table, load_reference

    assert "ag-emt" in SYSTEMS
    ref, message = load_reference("ag-emt")
    assert ref, message
    assert ref["system"] == "ag-emt" and ref["reference"] == "EMT"
    assert message.startswith("EMT reference")
    assert {"V0", "E0", "B0", "B0_prime", "compressed"} <= set(ref["eos"])
    assert len(ref["eos"]["compressed"]["volume_ratio"]) == len(ref["eos"]["compressed"]["energy"])
    assert set(ref["elastic"]) == {"C11", "C12", "C44"}
    assert {"gamma_THz", "X_THz", "L_THz"} <= set(ref["phonons"])
    assert len(ref["repulsion"]["r"]) == len(ref["repulsion"]["energy"]) > 3
    assert ref["md"]["rdf_first_peak_A"] > 2.5
    assert {"temperature_K", "rdf_first_peak_A", "min_distance_A"} <= set(ref["liquid"])
    rows = comparison_table(ref, None, None)
    referenced = [r for r, q in zip(rows, QUANTITIES, strict=True) if q[3] is not None]
    assert all(r["dft"] is not None for r in referenced), [r["quantity"] for r in referenced]


#: shipped crystal models whose E(V) is known to fail the check, and why (docs/science.md §6)
#: registered crystal models known to fail the check: reachable by their explicit name for
#: comparison, never served under a plain name (the shipping rule excludes them; lab/ship.py)
KNOWN_UNPHYSICAL_EOS: dict[str, str] = {
    "si-pan": "converged pan, seed 0: B(V) dips at 1.02 V0 (docs/science.md section 6); "
    "the reason si does not serve it",
    "lif-pan+pgs": "100-epoch pan+pgs, seed 0 (the former lif): B(V) rises by 0.5 GPa from "
    "1.036 to 1.060 V0 (docs/science.md section 6); one reason lif does not serve it",
    "lif-pgs": "100-epoch pgs, seed 0: B(V0) 76.4 GPa, 10.2 % above DFT (69.3); "
    "one reason lif does not serve it (results/training/ship_lif.md)",
    "ag-pgs": "100-epoch pgs, seed 0: B(V0) 103.5 GPa, 14.5 % above DFT (90.4); "
    "one reason ag does not serve it (results/training/ship_ag.md)",
}
CRYSTAL_MODELS = [n for n in MODELS if pre.model_entry(n).get("system") in ("si", "lif", "ag")]


def test_served_crystal_names_are_not_known_to_fail_the_equation_of_state_check():
    """The plain names and their twins must pass outright: no expected failure for them."""
    served = {name for system in ("si", "lif", "ag") for name in (system, f"{system}-baseline")}
    assert served <= set(CRYSTAL_MODELS)
    assert not served & set(KNOWN_UNPHYSICAL_EOS)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            n,
            marks=pytest.mark.xfail(strict=True, reason=KNOWN_UNPHYSICAL_EOS[n])
            if n in KNOWN_UNPHYSICAL_EOS
            else (),
        )
        for n in CRYSTAL_MODELS
    ],
)
def test_shipped_crystal_models_have_a_physical_equation_of_state(name):
    """B(V) = -V dP/dV falls with V over +-6 % of V0, and B(V0) is within 10 % of DFT B0."""
    from pansim import PANCalculator
    from pansim.data.settings import crystal_cell
    from workflows.bulk_modulus import bulk_modulus_checks
    from workflows.eos import equation_of_state

    system = pre.model_entry(name)["system"]
    dft = json.loads((ROOT / "data" / system / "reference" / "properties.json").read_text())
    # primitive diamond / rock-salt / fcc cells: the atoms sit on symmetry sites, so the
    # scan needs no relaxation of positions at each volume (only the first cell relaxation)
    res = equation_of_state(
        crystal_cell(system),
        PANCalculator(model=name, dtype="float64"),
        relax_positions=False,
        compressed=(),
    )
    checks = bulk_modulus_checks(
        res.volumes, res.local_bulk_modulus, res.V0, res.B0_prime, dft["eos"]["B0"]
    )
    assert checks["monotone"], f"{name}: B(V) = {res.local_bulk_modulus} GPa is not monotone"
    assert checks["B_V0_within_rtol"], (
        f"{name}: B(V0) = {checks['B_V0']:.1f} GPa, DFT B0 = {dft['eos']['B0']:.1f} GPa"
    )


@pytest.mark.parametrize("name", MODELS)
def test_every_shipped_model_carries_its_training_domain(name):
    """Out-of-domain warnings need it (pansim.domain); shipping stamps it (lab/cards.py)."""
    from pansim.domain import DOMAIN_KEY
    from pansim.model_io import read_model_file

    meta = read_model_file(pre.get_model_path(name))[1]
    assert meta.get(DOMAIN_KEY), f"{name}: no training-domain statistics in its file"
