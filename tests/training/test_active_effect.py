"""scripts/active_effect.py: the before/after table of the active-learning labels."""

import json
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    return runpy.run_path(str(ROOT / "scripts" / "active_effect.py"))


def test_split_errors_match_the_trainers_test_metrics(script):
    """The table's test MAEs are what `pansim train` measured on the same file."""
    card = json.loads((ROOT / "pansim" / "pretrained" / "si-baseline.json").read_text())
    errors = script["split_errors"]("si-baseline", ROOT / card["data"]["test_file"])
    assert errors["n_structures"] == card["test_metrics"]["n_structures"]
    for key in ("energy_per_atom", "forces", "stress"):
        assert errors[key] == pytest.approx(card["test_metrics"][key]["mae"], rel=1e-6)


def test_markdown_lists_splits_and_short_range_rows(script):
    errors = {"energy_per_atom": 4.0, "forces": 50.0, "stress": 0.4, "n_structures": 3}
    data = {
        "system": "si", "label": "baseline s0", "before": "a", "after": "b", "command": "cmd",
        "splits": {"active test": {"before": errors, "after": {**errors, "forces": 40.0}}},
        "short_range": [{"quantity": "E(0.80 V0) - E0", "unit": "eV/atom", "dft": 0.33,
                         "baseline": 0.36, "model": 0.34}],
    }  # fmt: skip
    table = script["markdown"](data)
    assert "| active test (3 structures): forces MAE | meV/A | - | 50 | 40 | -20.0 % |" in table
    assert "|err| 0.03 -> 0.01" in table
