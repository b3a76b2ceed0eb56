"""scripts/validate_wins.py: which model of a validated pair is closer to DFT, per row."""

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wins():
    return runpy.run_path(str(ROOT / "scripts" / "validate_wins.py"))


@pytest.mark.parametrize(
    ("row", "closer"),
    [
        ({"quantity": "B0", "dft": 88.5, "model": 86.7, "baseline": 91.3}, "model"),
        ({"quantity": "C11", "dft": 152.8, "model": 109.4, "baseline": 124.7}, "baseline"),
        ({"quantity": "V0", "dft": 20.0, "model": 20.1, "baseline": 19.9}, "tie"),
        ({"quantity": "repulsion RMSE vs DFT", "dft": None, "model": 0.2, "baseline": 0.01},
         "baseline"),
        ({"quantity": "softening ratio (1 = DFT)", "dft": None, "model": 1.02,
          "baseline": 0.95}, "model"),
        ({"quantity": "NVE drift", "dft": None, "model": -0.001, "baseline": 0.003}, "model"),
        ({"quantity": "imaginary modes", "dft": None, "model": 0, "baseline": 2}, "model"),
        ({"quantity": "B(V) falls with V over +-6 % (1 = yes)", "dft": None, "model": 0,
          "baseline": 1}, "baseline"),
        ({"quantity": "E0", "dft": None, "model": -5.3, "baseline": -5.4}, None),
        ({"quantity": "B0", "dft": 88.5, "model": None, "baseline": 91.3}, None),
    ],
)  # fmt: skip
def test_verdict_per_row(wins, row, closer):
    assert wins["verdict"](row) == closer


def test_table_counts_each_pair(wins, tmp_path):
    import json

    report = {"model": "si", "baseline": "si-baseline", "table": [
        {"quantity": "B0", "dft": 88.5, "model": 86.7, "baseline": 91.3},
        {"quantity": "C11", "dft": 152.8, "model": 109.4, "baseline": 124.7},
        {"quantity": "E0", "dft": None, "model": -5.3, "baseline": -5.4}]}  # fmt: skip
    (tmp_path / "si").mkdir()
    (tmp_path / "si" / "report.json").write_text(json.dumps(report))
    assert wins["main"](["--reports", str(tmp_path)]) == 0
    text = (tmp_path / "wins.md").read_text()
    assert "| si | `si` | `si-baseline` | 1 | 1 | 0 |" in text
