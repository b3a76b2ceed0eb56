"""A few training steps: every variant in process, then nequip's own stack and the ASE route.

``test_few_steps_every_variant`` takes a few Adam steps on energies and forces for
every backbone and variant. ``test_train_package_and_load`` runs ``nequip-train`` on
``configs/nequip/si-{nequip,allegro}.yaml`` with command-line overrides (tiny model, two
epochs, synthetic EMT data in pansim's data layout), then packages the checkpoint with
``nequip-package`` and loads both files through
:func:`pansim_nequip.calculator.load_calculator`; PAN's ``c_max`` in them is the one the
MACE route computes from the same training file.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.io import read
from nequip.data import AtomicDataDict
from pansim_nequip.calculator import calculator_from_model, load_calculator

from _data import emt_frames, pansim_c_max, write_emt_dataset
from _tiny import build

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
R_MAX = 4.0
TINY = ["max_epochs=2", "num_features=8", "num_layers=2", f"cutoff_radius={R_MAX}"]
EXTRA = {"nequip": [], "allegro": ["num_tensor_features=4"]}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_emt_dataset(tmp_path_factory.mktemp("emt"))


def train(backbone: str, variant: str, dataset: Path, out: Path) -> Path:
    command = [
        str(BIN / "nequip-train"),
        "-cp", str(REPO / "configs" / "nequip"),
        "-cn", f"si-{backbone}",
        f"variant={variant}", f"data_dir={dataset}", "model_type_names=[Cu]",
        f"hydra.run.dir={out}", *TINY, *EXTRA[backbone],
    ]  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out / "best.ckpt"


def loss_fn(model, batch, reference):
    out = model(dict(batch))
    n_atoms = batch[AtomicDataDict.NUM_NODES_KEY].view(-1)
    energy = (out[AtomicDataDict.TOTAL_ENERGY_KEY].view(-1) - reference["energy"]) / n_atoms
    forces = out[AtomicDataDict.FORCE_KEY] - reference["forces"]
    return energy.square().mean() + forces.square().mean()


@pytest.mark.parametrize("backbone", ["nequip", "allegro"])
@pytest.mark.parametrize("variant", ["baseline", "pan", "pgs", "pan+pgs"])
def test_few_steps_every_variant(backbone, variant):
    model = build(backbone, variant, type_names=["Cu"], r_max=R_MAX)
    frames = emt_frames(4, seed=5)
    calc = calculator_from_model(model)
    batch = AtomicDataDict.batched_from_list([calc.atoms_to_data(a) for a in frames])
    reference = {
        "energy": torch.tensor([a.info["REF_energy"] for a in frames], dtype=torch.float64),
        "forces": torch.tensor(np.concatenate([a.arrays["REF_forces"] for a in frames])),
    }
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(4):
        optimizer.zero_grad()
        loss = loss_fn(model, batch, reference)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    moved = [n for n, p in model.named_parameters() if not torch.equal(p, start[n])]
    added = [n for n in moved if "amplitude" in n or "pgs_" in n]
    assert bool(added) == (variant != "baseline"), added


@pytest.mark.parametrize(("backbone", "variant"), [("nequip", "pan+pgs"), ("allegro", "pan+pgs")])
def test_train_package_and_load(backbone, variant, dataset, tmp_path):
    checkpoint = train(backbone, variant, dataset, tmp_path / "run")
    assert checkpoint.exists() and (tmp_path / "run" / "test_dataset0.xyz").exists()
    package = tmp_path / "model.nequip.zip"
    subprocess.run(
        [str(BIN / "nequip-package"), "build", str(checkpoint), str(package)],
        cwd=tmp_path, check=True, capture_output=True,
    )  # fmt: skip
    atoms = read(dataset / "test.extxyz", 0)
    c_max = pansim_c_max(read(dataset / "train.extxyz", ":"), R_MAX, p=6)
    results = []
    for path in (checkpoint, package):
        calc = load_calculator(path)
        work = atoms.copy()
        work.calc = calc
        results.append((work.get_potential_energy(), work.get_forces(), work.get_stress()))
        trained = {n: p for n, p in calc.model.named_parameters() if "pgs_readout" in n}
        assert trained and all(p.abs().sum() > 0 for p in trained.values())  # left zero init
        centres = [b for n, b in calc.model.named_buffers() if n.endswith("pan.centers")]
        assert centres and all(float(c[-1]) == pytest.approx(c_max, rel=1e-10) for c in centres)
    (e0, f0, s0), (e1, f1, s1) = results
    assert np.isfinite(e0) and abs(e0 - e1) < 1e-10
    np.testing.assert_allclose(f0, f1, atol=1e-10)
    np.testing.assert_allclose(s0, s1, atol=1e-10)


@pytest.mark.slow  # two more trainings; run with: bash scripts/test_nequip.sh -m slow
def test_comparison_run_and_table(dataset, tmp_path):
    """The comparison driver trains baseline and pan+pgs, then writes the ablation rows."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "nequip").symlink_to(REPO / "configs" / "nequip")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "si").symlink_to(dataset)
    selection = ["--systems", "si", "--backbones", "nequip", "--seeds", "0"]
    overrides = ["model_type_names=[Cu]", *TINY]
    driver = [sys.executable, "-m", "pansim_nequip.comparison"]
    for command in ("run", "table"):
        result = subprocess.run(
            [*driver, command, *selection, "--", *overrides],
            cwd=tmp_path, capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = json.loads((tmp_path / "results" / "nequip" / "ablation.json").read_text())
    rows = {row["variant"]: row for row in table["table"]}
    assert set(rows) == {"baseline", "pan+pgs"}
    assert rows["baseline"]["system"] == "si (nequip)"
    assert rows["pan+pgs"]["flops_ratio"] > 1.0
    assert all(row["forces"]["mean"] > 0 for row in rows.values())
