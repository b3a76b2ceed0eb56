"""scripts/tuning.py: equal trials per variant, chosen on validation, test touched once."""

import runpy
import shutil
from pathlib import Path

import pytest
import yaml

from pansim.training.config import load_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tuning():
    return runpy.run_path(str(ROOT / "scripts" / "tuning.py"))


def test_every_variant_gets_the_same_number_of_distinct_trials(tuning):
    for variant in tuning["VARIANTS"]:
        trials = tuning["trials"](variant)
        names = {tuning["trial_name"](variant, t) for t in trials}
        assert len(trials) == len(names) == tuning["TRIALS_PER_VARIANT"]
        assert {1e-2, 2.5e-3, 5e-3} <= {t["lr"] for t in trials}
        with_pan = "pan" in variant.split("+")
        assert all(bool(t.get("pan_curvature_weight")) == with_pan for t in trials)


def test_committed_configs_are_what_write_makes_and_have_no_test_split(tuning, tmp_path):
    shutil.copytree(
        ROOT / "configs" / "converged" / "base", tmp_path / "configs" / "converged" / "base"
    )
    written = tuning["write_configs"]("si", root=tmp_path)
    assert len(written) == 4 * len(tuning["VARIANTS"])
    for path in written:
        committed = ROOT / "configs" / "tuning" / "si" / path.name
        assert committed.read_text() == path.read_text()
        config = load_config(committed)
        assert config.test_file is None and config.seed == 0
    # a trial that an earlier run already is points at that run, config for config
    reused = yaml.safe_load(
        (ROOT / "configs" / "tuning" / "si" / "pan-lr0.005-curv1-seed0.yaml").read_text()
    )
    earlier = yaml.safe_load(
        (ROOT / "configs" / "trials" / "si" / "pan-curv1-seed0.yaml").read_text()
    )
    assert reused == earlier


def _finished(name, loss):
    return {"name": name, "run": {"status": "finished", "best_valid_loss": loss}}


def test_choice_waits_for_every_trial_and_takes_the_lowest_validation_loss(tuning):
    rows = [_finished(f"pan-t{k}-seed0", loss) for k, loss in enumerate((0.3, 0.1, 0.2))]
    assert tuning["choose"]({"pan": rows}) == {"pan": None}  # 3 of 4 trials: no choice
    rows.append(_finished("pan-t3-seed0", 0.15))
    assert tuning["choose"]({"pan": rows})["pan"]["name"] == "pan-t1-seed0"
