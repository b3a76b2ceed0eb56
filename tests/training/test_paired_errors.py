"""scripts/paired_errors.py: paired bootstrap of a variant's MAE against its baseline."""

import json
import runpy
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = runpy.run_path(str(ROOT / "scripts" / "paired_errors.py"))


def _errors(abs_sums, counts=None):
    counts = np.ones(len(abs_sums)) if counts is None else np.asarray(counts, float)
    return np.column_stack([np.asarray(abs_sums, float), counts])


def test_identical_models_change_nothing_and_halved_errors_are_minus_fifty_percent():
    rng = np.random.default_rng(1)
    base = _errors(rng.uniform(1, 3, size=40) * 24, np.full(40, 24))
    same = SCRIPT["paired_change"](base, base.copy(), resamples=500)
    assert same["change"] == 0 and same["ci95"] == [0, 0] and same["p_lower"] == 0
    half = base.copy()
    half[:, 0] /= 2
    out = SCRIPT["paired_change"](base, half, resamples=500)
    assert out["change"] == pytest.approx(-0.5)
    assert out["ci95"] == pytest.approx([-0.5, -0.5]) and out["p_lower"] == 1
    assert out["baseline_mae"] == pytest.approx(base[:, 0].sum() / base[:, 1].sum())


def test_interval_straddles_zero_when_the_difference_is_noise():
    rng = np.random.default_rng(2)
    base = _errors(rng.uniform(1, 3, size=30))
    noisy = _errors(base[:, 0] * rng.uniform(0.7, 1.3, size=30))
    out = SCRIPT["paired_change"](base, noisy, resamples=2000)
    low, high = out["ci95"]
    assert low < out["change"] < high and low < 0 < high and 0 < out["p_lower"] < 1


def test_pooled_mae_weights_structures_by_their_counts_and_unlabelled_is_none():
    base = _errors([10.0, 0.0], [10, 0])  # the second structure has no label
    var = _errors([5.0, 0.0], [10, 0])
    out = SCRIPT["paired_change"](base, var, resamples=100)
    assert out["baseline_mae"] == 1.0 and out["variant_mae"] == 0.5
    assert SCRIPT["paired_change"](_errors([0, 0], [0, 0]), _errors([0, 0], [0, 0])) is None
    with pytest.raises(ValueError, match="different structures"):
        SCRIPT["paired_change"](base, _errors([1.0]))


def test_committed_si_runs_reproduce_their_validation_maes(tmp_path):
    """Real converged runs: the full-sample MAEs equal the trainer's best-epoch metrics."""
    out = tmp_path / "paired_si"
    argv = ["--system", "si", "--splits", "valid", "--resamples", "200", "--out", str(out)]
    assert SCRIPT["main"](argv) == 0
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert {r["split"] for r in rows} == {"valid"} and {r["variant"] for r in rows} >= {"pan"}
    runs = {r["variant"]: r for r in SCRIPT["collect"](ROOT / "results" / "converged")["si"]}
    for row in rows:
        base, var = runs["baseline"], runs[row["variant"]]
        assert row["forces"]["baseline_mae"] == pytest.approx(
            base["best_valid"]["valid_forces_mae"], rel=1e-3
        )
        assert row["forces"]["variant_mae"] == pytest.approx(
            var["best_valid"]["valid_forces_mae"], rel=1e-3
        )
    text = out.with_suffix(".md").read_text()
    assert "| valid | pan | 0 | 30 |" in text and "--resamples 200" in text  # the command


def test_baselines_from_another_folder(tmp_path):
    """A two-stage run is set against the baseline it started from (--baseline-runs)."""
    runs = tmp_path / "runs"
    (runs / "si").mkdir(parents=True)
    source = ROOT / "results" / "converged" / "si" / "pan-seed0"
    (runs / "si" / "pan-seed0").symlink_to(source)
    out = tmp_path / "paired"
    argv = ["--system", "si", "--runs", str(runs), "--splits", "valid", "--resamples", "50",
            "--baseline-runs", str(ROOT / "results" / "converged"), "--out", str(out)]  # fmt: skip
    assert SCRIPT["main"](argv) == 0
    (row,) = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert row["variant"] == "pan" and row["forces"]["n_structures"] == 30
    assert SCRIPT["main"](argv[:-4] + ["--out", str(out)]) == 1  # no baseline beside it
