"""The committed ablation table is backed by committed runs that ``pansim eval`` reproduces.

Every MACE row of ``results/ablation/ablation.json`` must come from a finished run under
``results/training/`` whose best weights are committed, with the run's own test metrics
(``summary.json``, written by the trainer); ``pansim eval`` on the committed test split
re-derives one non-shipped run's row from its weights.
"""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "results" / "ablation" / "ablation.json"
ROWS = json.loads(TABLE.read_text())["runs"] if TABLE.exists() else []
#: rows of pansim's MACE runs (the NequIP / Allegro rows come from results/nequip/)
MACE_ROWS = [r for r in ROWS if "(" not in r["system"]]


def _run_dir(row: dict) -> Path:
    return ROOT / "results" / "training" / row["system"] / f"{row['variant']}-seed{row['seed']}"


def _close(a: dict, b: dict) -> None:
    for key in ("energy_per_atom", "forces", "stress"):
        for stat in ("mae", "rmse"):
            if a[key][stat] is None:
                assert b[key][stat] is None, (key, stat)
            else:
                assert b[key][stat] == pytest.approx(a[key][stat], rel=1e-6), (key, stat)
    assert a["n_structures"] == b["n_structures"]


@pytest.mark.skipif(not MACE_ROWS, reason="no ablation table committed")
def test_every_ablation_row_is_a_committed_finished_run():
    for row in MACE_ROWS:
        run = _run_dir(row)
        assert (run / "best_model.safetensors").is_file(), run
        summary = json.loads((run / "summary.json").read_text())
        assert summary["stop_reason"].startswith(("max_epochs", "early_stopping")), run
        assert summary["config"]["seed"] == row["seed"]
        assert summary["config"]["variant"] == row["variant"]
        _close(summary["test"], row["metrics"])


@pytest.mark.skipif(not MACE_ROWS, reason="no ablation table committed")
def test_pansim_eval_reproduces_an_ablation_row_from_its_weights(capsys):
    from pansim.cli import main

    # a seed the registry does not ship: its weights exist only as the run's own file
    row = next(r for r in MACE_ROWS if r["seed"] == 1 and r["system"] in ("si", "lif"))
    run = _run_dir(row)
    test_file = ROOT / json.loads((run / "summary.json").read_text())["config"]["test_file"]
    assert main(["eval", str(run / "best_model.safetensors"), str(test_file), "--json"]) == 0
    printed = capsys.readouterr().out
    _close(row["metrics"], json.loads(printed[printed.find("{") :]))


def test_scalar_pathway_probe_reads_the_committed_si_run(tmp_path):
    import runpy

    script = runpy.run_path(str(ROOT / "scripts" / "scalar_pathway_probe.py"))
    text = script["main"](["--systems", "si", "--frames", "4", "--out", str(tmp_path / "p.md")])
    assert (tmp_path / "p.md").read_text() == text
    rows = [line for line in text.splitlines() if line.startswith("| si |")]
    assert [r.split("|")[2].strip() for r in rows] == [
        "edge mixer", "PAN 0", "PAN 1", "readout 0", "readout 1"
    ]  # fmt: skip
    summary = json.loads((ROOT / "results/training/si/pan+pgs-seed0/summary.json").read_text())
    assert summary["config"]["variant"] == "pan+pgs"
    assert "ES centre spacing 0.286" in rows[3]  # 8 centres on [-1, 1]


def test_errors_by_route_covers_every_test_configuration(tmp_path, capsys):
    """The per-route table's 'all' row is the shipped card's force MAE; routes sum up."""
    import runpy

    script = runpy.run_path(str(ROOT / "scripts" / "errors_by_route.py"))
    out = tmp_path / "routes.md"
    assert script["main"](["--system", "si", "--model", "b=si-baseline", "--out", str(out)]) == 0
    card = json.loads((ROOT / "pansim" / "pretrained" / "si-baseline.json").read_text())
    rows = [line.split("|")[1:-1] for line in out.read_text().splitlines() if line.startswith("| ")]
    table = {r[0].strip(): (int(r[1]), float(r[2])) for r in rows[2:]}  # after the rule
    assert table["all"][1] == pytest.approx(card["test_metrics"]["forces"]["mae"], abs=0.051)
    assert sum(n for route, (n, _) in table.items() if route != "all") == table["all"][0] == 30
    assert {"strain", "thermal", "liquid"} <= set(table)
