"""scripts/datasize.py: nested subsets, generated configs, the report from run folders."""

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.io import read, write

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ds():
    return runpy.run_path(str(ROOT / "scripts" / "datasize.py"))


def test_subsets_are_nested_fixed_and_checked(ds):
    small, large = ds["subset_indices"](50, 10), ds["subset_indices"](50, 20)
    assert set(small) < set(large) and len(set(large)) == 20
    assert ds["subset_indices"](50, 10) == small  # the same for every variant and seed
    assert ds["subset_indices"](50, 50) == list(range(50))
    with pytest.raises(ValueError, match="subset size 51"):
        ds["subset_indices"](50, 51)


def test_write_subsets_and_configs(ds, tmp_path):
    frames = [Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7 + 0.01 * i]]) for i in range(12)]
    for i, a in enumerate(frames):
        a.info["tag"] = i
    (tmp_path / "data" / "h2").mkdir(parents=True)
    write(tmp_path / "data" / "h2" / "train.extxyz", frames)
    base = tmp_path / "configs" / "converged" / "base"
    base.mkdir(parents=True)
    cfg = {"train_file": "data/h2/train.extxyz", "lr": 0.01}
    (base / "h2.yaml").write_text(yaml.safe_dump(cfg))
    paths = ds["write_subsets"]("h2", [4, 8], root=tmp_path)
    tags = [[a.info["tag"] for a in read(paths[n], ":")] for n in (4, 8)]
    assert set(tags[0]) < set(tags[1])
    record = json.loads((tmp_path / "data" / "h2" / "subsets" / "subsets.json").read_text())
    assert record["subsets"]["8"] == tags[1]
    configs = ds["write_configs"]("h2", [4, 8], root=tmp_path)
    assert len(configs) == 2 * 3 * 3
    cfg = yaml.safe_load((tmp_path / "configs/datasize/h2/pan-n4-seed2.yaml").read_text())
    assert cfg == {"train_file": "data/h2/subsets/train-n4.extxyz", "lr": 0.01, "variant": "pan",
                   "seed": 2, "out_dir": "results/datasize/h2/pan-n4-seed2"}  # fmt: skip
    assert ds["status"](configs[0], root=tmp_path) == "todo"


def test_report_takes_test_mae_and_the_full_size_run(ds, tmp_path):
    (tmp_path / "data" / "si").mkdir(parents=True)
    write(tmp_path / "data" / "si" / "train.extxyz", [Atoms("Si")] * 5)

    def finish(folder, forces, train_file="data/si/subsets/x.extxyz"):
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps({
            "stop_reason": "early stopping", "config": {"train_file": train_file},
            "test": {"forces": {"mae": forces}, "energy_per_atom": {"mae": 1.0}}}))  # fmt: skip

    for seed, f in enumerate((100.0, 110.0, 120.0)):
        finish(tmp_path / "results/datasize/si" / f"baseline-n2-seed{seed}", f)
        finish(tmp_path / "results/datasize/si" / f"pan-n2-seed{seed}", f - 10)
    finish(tmp_path / "results/converged/si/baseline-seed0", 50.0, "data/si/train.extxyz")
    finish(tmp_path / "results/converged/si/pgs-seed0", 40.0, "data/si/train.extxyz")
    table = ds["aggregate"](ds["collect"](tmp_path))
    by = {(t["variant"], t["n_train"]): t for t in table}
    assert set(by) == {("baseline", 2), ("pan", 2), ("baseline", 5)}  # pgs is not in the curve
    assert by[("baseline", 2)]["forces"] == {"mean": 110.0, "min": 100.0, "max": 120.0}
    assert by[("baseline", 5)]["seeds"] == 1
    assert "stress" not in by[("pan", 2)]
    text = ds["markdown"](table)
    assert f"{100 * (100 / 110 - 1):+.1f} %" in text
    assert np.isclose(by[("pan", 2)]["forces"]["mean"], 100.0)
