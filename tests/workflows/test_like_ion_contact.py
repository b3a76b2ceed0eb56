"""scripts/like_ion_contact.py: the like-ion contact scan behind docs/models.md's LiF note."""

import json
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = runpy.run_path(str(ROOT / "scripts" / "like_ion_contact.py"))


def test_scan_moves_a_like_neighbour_in_and_the_committed_table_replays():
    committed = json.loads((ROOT / "results/validate/lif_li_li_contact.json").read_text())
    distances = committed["distances_A"][:3]
    energies = SCRIPT["scan"]("lif", "Li", "lif", distances)
    assert energies[0] == 0.0 and 0 < energies[1] < energies[2]  # Li+ pushed together: up
    assert energies == pytest.approx(committed["energies_eV"]["lif"][:3], abs=1e-6)


def test_an_element_without_a_like_pair_is_a_clear_error():
    with pytest.raises(SystemExit, match="fewer than two Xe"):
        SCRIPT["scan"]("lif", "Xe", "lif")
