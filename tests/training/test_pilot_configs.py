"""The calibrated-pathway pilot (docs/calibrated_pgs.md) differs from the shipped plan only
in the documented options, so its runs compare with the shipped baselines and spec runs."""

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PILOT = sorted((ROOT / "configs" / "pilot").glob("*/*-seed*.yaml"))
OPTIONS = {"c_max_percentile", "c_max_margin", "pgs_calibrate", "pgs_calibrate_spread"}
MODEL_OPTIONS = {"pgs_edge_mix", "pgs_adaptive_squash"}


def test_there_are_pilot_configs():
    assert {p.parent.name for p in PILOT} >= {"si"}


@pytest.mark.parametrize("path", PILOT, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_pilot_differs_from_the_shipped_plan_only_in_the_documented_options(path):
    pilot = yaml.safe_load(path.read_text())
    shipped_path = ROOT / "configs" / "pretrained" / path.parent.name / path.name
    shipped = yaml.safe_load(shipped_path.read_text())
    assert pilot["variant"] in ("pgs", "pan+pgs") and pilot["seed"] == shipped["seed"]
    assert pilot["out_dir"] == f"results/pilot/{path.parent.name}/{path.stem}"
    changed = {k for k in pilot.keys() | shipped.keys() if pilot.get(k) != shipped.get(k)}
    assert changed - {"hyperparameters", "out_dir"} <= OPTIONS
    assert pilot["pgs_calibrate"] is True
    hp_pilot, hp_shipped = pilot["hyperparameters"], shipped["hyperparameters"]
    changed_hp = {
        k for k in hp_pilot.keys() | hp_shipped.keys() if hp_pilot.get(k) != hp_shipped.get(k)
    }
    assert changed_hp == MODEL_OPTIONS


PILOT_TABLES = sorted((ROOT / "results" / "pilot").glob("*/ablation.json"))


@pytest.mark.skipif(not PILOT_TABLES, reason="no pilot table committed")
@pytest.mark.parametrize("table", PILOT_TABLES, ids=lambda p: p.parent.name)
def test_every_pilot_row_is_a_committed_finished_run(table):
    """Calibrated rows come from results/pilot, the others from the shipped plan's runs."""
    rows = json.loads(table.read_text())["runs"]
    assert any(r["variant"].endswith(" calibrated") for r in rows)
    assert any(r["variant"] == "baseline" for r in rows)
    for row in rows:
        variant = row["variant"].removesuffix(" calibrated")
        root = "pilot" if row["variant"].endswith(" calibrated") else "training"
        run = ROOT / "results" / root / row["system"] / f"{variant}-seed{row['seed']}"
        assert (run / "best_model.safetensors").is_file(), run
        summary = json.loads((run / "summary.json").read_text())
        assert summary["stop_reason"].startswith("max_epochs"), run
        assert summary["config"].get("pgs_calibrate", False) is (root == "pilot")
        for key in ("energy_per_atom", "forces", "stress"):
            want = summary["test"][key]["mae"]
            assert row["metrics"][key]["mae"] == pytest.approx(want, rel=1e-6), (run, key)
