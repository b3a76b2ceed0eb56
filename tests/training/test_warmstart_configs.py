"""The Si warm-start test (configs/warmstart): two runs that differ only by the variant."""

from pathlib import Path

import numpy as np
import yaml
from ase.io import read

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "warmstart" / "si"


VARIANTS = ("pan", "pgs", "pan+pgs")


def test_runs_differ_only_in_variant_start_file_and_output():
    base = yaml.safe_load((CONFIGS / "baseline-seed0.yaml").read_text())
    for variant in VARIANTS:
        graft = yaml.safe_load((CONFIGS / f"{variant}-seed0.yaml").read_text())
        differing = {k for k in base.keys() | graft.keys() if base.get(k) != graft.get(k)}
        assert differing == {"init_from", "variant", "out_dir"}, variant
        assert graft["init_from"] == f"results/warmstart/si/init-{variant}.safetensors"
    assert base["init_from"] == "results/converged/si/baseline-seed0/best_model.safetensors"
    converged = yaml.safe_load((ROOT / "configs/converged/si/baseline-seed0.yaml").read_text())
    # the architecture comes from the start file; the learning rate is the baseline's at stop
    own = ("hyperparameters", "r_max", "atomic_energies", "c_max_percentile", "lr", "variant")
    same = {k for k in converged if k not in (*own, "out_dir")}
    assert {k: base[k] for k in same} == {k: converged[k] for k in same}


def test_the_grafted_start_predicts_what_the_converged_baseline_predicts():
    from pansim import PANCalculator

    atoms = read(ROOT / "data/si/val.extxyz", index=0)
    out = []
    names = ["results/converged/si/baseline-seed0/best_model.safetensors"]
    names += [f"results/warmstart/si/init-{variant}.safetensors" for variant in VARIANTS]
    for name in names:
        atoms.calc = PANCalculator(model=ROOT / name, dtype="float64")
        out.append((atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    e0, f0, s0 = out[0]
    for e1, f1, s1 in out[1:]:
        assert abs(e0 - e1) < 1e-10
        np.testing.assert_allclose(f1, f0, atol=1e-10)
        np.testing.assert_allclose(s1, s0, atol=1e-10)
