"""scripts/eos_check.py: the table marks a failed B(V) check."""

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_markdown_marks_failed_checks():
    script = runpy.run_path(str(ROOT / "scripts" / "eos_check.py"))
    good = {
        "model": "a",
        "B0": 90.0,
        "B0_prime": 4.5,
        "B_V0": 91.0,
        "monotone": True,
        "B_V0_within_10pct": True,
        "B_of_V": {"0.940": 120.0, "1.000": 91.0},
        "dft_B0": 88.5,
    }
    bad = {**good, "model": "b", "monotone": False, "B_V0_within_10pct": False}
    table = script["markdown"]("si", [good, bad])
    assert "DFT B0 88.5 GPa" in table
    assert "| `a` | 90.0 | 4.50 | 91.0 | yes | yes | 120.0 | 91.0 |" in table
    assert "| `b` | 90.0 | 4.50 | 91.0 | **no** | **no** |" in table
