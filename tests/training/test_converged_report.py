"""scripts/converged_report.py: stopping table and learning curves from run folders."""

import json
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _row(epoch, loss, forces):
    return {"epoch": epoch, "lr": 1e-3, "valid_loss": loss, "valid_forces_mae": forces,
            "valid_energy_mae": 1.0, "valid_stress_mae": 0.1}  # fmt: skip


def test_report_marks_running_runs_and_takes_best_epoch_on_validation(tmp_path):
    report = runpy.run_path(str(ROOT / "scripts" / "converged_report.py"))
    done = tmp_path / "si" / "pan-seed0"
    running = tmp_path / "si" / "baseline-seed0"
    for path in (done, running):
        path.mkdir(parents=True)
    history = [_row(0, 3.0, 90.0), _row(1, 1.0, 60.0), _row(2, 2.0, 70.0)]
    (done / "metrics.json").write_text(json.dumps(history))
    (done / "summary.json").write_text(json.dumps({
        "stop_reason": "early stopping", "test": {"forces": {"mae": 55.5}}}))  # fmt: skip
    (running / "metrics.json").write_text(json.dumps(history[:1]))
    assert report["main"](["--runs", str(tmp_path)]) == 0
    runs = json.loads((tmp_path / "report.json").read_text())["si"]
    assert [(r["variant"], r["status"]) for r in runs] == [
        ("baseline", "running"),
        ("pan", "finished"),
    ]
    assert runs[1]["best_epoch"] == 1 and runs[1]["best_valid"]["valid_forces_mae"] == 60.0
    assert runs[0]["test"] is None
    table = (tmp_path / "report.md").read_text()
    assert "| pan s0 | finished | 3 | 1 | early stopping | 0.001 | - |" in table and "55.5" in table
    assert (tmp_path / "si" / "learning_curves.png").stat().st_size > 1000


def test_late_change_measures_the_last_window():
    from lab.runs import late_change

    falling = [_row(i, 10.0 - 0.1 * i, 1.0) for i in range(40)]
    flat = [_row(i, 1.0, 1.0) for i in range(40)]
    assert late_change(falling) == pytest.approx((6.1 - 8.1) / 8.1)
    assert late_change(flat) == 0.0
    assert late_change(flat[:39]) is None


def test_compute_account_charges_unfinished_jobs_their_variants_mean_epochs():
    from lab.runs import compute_account

    def run(variant, seed, status, epochs, seconds=None):
        return {"system": "si", "variant": variant, "seed": seed, "status": status,
                "epochs": epochs, "train_seconds": seconds}  # fmt: skip

    runs = [
        run("baseline", 0, "finished", 200, 4000.0),
        run("pan", 0, "finished", 100, 2000.0),
        run("baseline", 1, "running", 150),
    ]
    planned = [("si", v, s) for v in ("baseline", "pan", "pgs") for s in (0, 1)]
    account = compute_account(runs, planned)
    assert account["seconds_per_epoch"] == pytest.approx(20.0)
    assert account["spent_core_hours"] == pytest.approx(6000 / 3600)
    assert (account["running_jobs"], account["todo_jobs"]) == (1, 3)
    # baseline s1: 50 epochs left; pan s1: 100; pgs s0, s1: the mean of all (150) each
    assert account["remaining_core_hours"] == pytest.approx((50 + 100 + 300) * 20 / 3600)
    assert compute_account([runs[2]], planned) == {"finished_runs": 0}
