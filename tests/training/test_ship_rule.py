"""The shipping rule of issue 23 (lab/ship.py) and shipping what it chose (lab/cards.py)."""

import json
import runpy
from pathlib import Path

import pytest

from lab import ship

ROOT = Path(__file__).resolve().parents[2]


def _run(variant, seed, loss, status="finished", forces=50.0, test_forces=55.0, energy=4.0):
    return {
        "system": "si", "variant": variant, "seed": seed, "status": status,
        "path": f"runs/si/{variant}-seed{seed}", "best_valid_loss": loss,
        "best_valid": {"valid_energy_mae": energy, "valid_forces_mae": forces,
                       "valid_stress_mae": 0.3},
        "test": {"energy_per_atom": {"mae": 4.5}, "forces": {"mae": test_forces},
                 "stress": {"mae": 0.35}} if status == "finished" else None,
    }  # fmt: skip


def _eos(runs, failing=()):
    return {
        r["path"]: {"monotone": r["variant"] not in failing, "B_V0_within_10pct": True,
                    "B_V0": 90.0}
        for r in runs
    }  # fmt: skip


def test_lowest_validation_loss_among_physical_variants_wins():
    runs = [_run("baseline", 0, 0.12), _run("pan", 0, 0.11), _run("pgs", 0, 0.115)]
    decision = ship.choose("si", runs, _eos(runs))
    assert decision["served"] == "pan" and "pan has the lowest" in decision["reason"]
    # pan bends E(V): the next physical variant below the baseline wins
    decision = ship.choose("si", runs, _eos(runs, failing=("pan",)))
    assert decision["served"] == "pgs" and decision["eos_failing"] == ["pan"]


def test_baseline_architecture_serves_when_no_variant_wins():
    runs = [_run("baseline", 0, 0.120), _run("pan", 0, 0.125), _run("pan+pgs", 0, 0.110)]
    decision = ship.choose("si", runs, _eos(runs, failing=("pan+pgs",)))
    assert decision["served"] == "baseline"
    assert "pan, mean validation loss 0.1250" in decision["reason"]
    assert "pan+pgs fail(s) the E(V) check" in decision["reason"]
    table = ship.markdown(decision)
    assert "| baseline (served) | 0.1200 |" in table and "**fail**" in table
    assert "forces +0.0 %" in table  # served = baseline: test relative change is zero


def test_a_lower_loss_does_not_win_when_a_validation_error_is_worse():
    """The Si case: pgs 0.1202 vs 0.1204 validation loss with a 48 % higher energy MAE."""
    runs = [
        _run("baseline", 0, 0.1204, energy=3.90, forces=54.0),
        _run("pgs", 0, 0.1202, energy=5.76, forces=54.4),
        _run("pan+pgs", 0, 0.1230, energy=4.37, forces=57.2),
    ]  # fmt: skip
    decision = ship.choose("si", runs, _eos(runs))
    assert decision["served"] == "baseline"
    worse = decision["worse_on_validation"]
    assert set(worse) == {"pgs", "pan+pgs"}
    assert worse["pgs"]["energy"] == pytest.approx(5.76 / 3.90 - 1)
    assert worse["pgs"]["forces"] == pytest.approx(54.4 / 54.0 - 1) and "stress" not in worse["pgs"]
    assert (
        "pgs is worse than the baseline on validation energy (+47.7 %), forces (+0.7 %)"
        in (decision["reason"])
    )
    # equal errors are not worse: the lower loss then wins
    runs[1] = _run("pgs", 0, 0.1202, energy=3.90, forces=54.0)
    assert ship.choose("si", runs, _eos(runs))["served"] == "pgs"


def test_only_seeds_finished_by_every_variant_count():
    runs = [
        _run("baseline", 0, 0.12), _run("baseline", 1, 0.30),
        _run("pan", 0, 0.13), _run("pan", 1, 0.10, status="running"),
    ]  # fmt: skip
    decision = ship.choose("si", runs, _eos(runs))
    assert decision["seeds"] == [0] and decision["served"] == "baseline"
    assert decision["unfinished"] == []  # pan has a finished seed: it is counted there
    runs.append({**_run("pgs", 0, 0.2, status="running"), "epochs": 80})
    decision = ship.choose("si", runs, _eos(runs[:-1]))
    assert decision["unfinished"] == ["pgs"]
    assert (
        "still training: pgs (epoch 80, best validation loss so far 0.2000)" in decision["reason"]
    )
    assert decision["variants"]["baseline"]["valid_loss"] == pytest.approx(0.12)
    # molecules: no E(V) check, the rule is validation loss alone
    runs = [_run("baseline", s, 0.2 + s) for s in (0, 1)] + [
        _run("pan+pgs", s, 0.1 + s) for s in (0, 1)
    ]
    decision = ship.choose("ethanol", runs)
    assert decision["served"] == "pan+pgs" and decision["seeds"] == [0, 1]
    assert decision["variants"]["pan+pgs"]["valid_loss"] == pytest.approx(0.6)
    assert decision["variants"]["pan+pgs"]["eos_ok"] is None


def _warm(variant, loss, **kw):
    """A run of the second recipe (its own folder), tagged ``<variant>@warmstart``."""
    run = {**_run(variant, 0, loss, **kw), "path": f"warm/si/{variant}-seed0"}
    return ship.tag_recipe([run], "warmstart")[0]


def test_a_second_recipe_is_judged_against_the_same_baseline_twin():
    """The Si warm start: pan+pgs grafted on the converged baseline and trained on."""
    runs = [
        _run("baseline", 0, 0.1204, energy=3.90, forces=54.0),
        _run("pan+pgs", 0, 0.1230, energy=4.37, forces=57.2),
        _warm("baseline", 0.1244, energy=3.91, forces=55.0),  # the control, continued
        _warm("pan+pgs", 0.1195, energy=3.85, forces=53.4),
        _warm("pgs", 0.1180, energy=4.12, forces=52.9),  # lower loss, worse energy
    ]  # fmt: skip
    decision = ship.choose("si", runs, _eos(runs))
    assert decision["baseline"] == "baseline"  # the control is above the converged baseline
    assert decision["served"] == "pan+pgs@warmstart"
    assert set(decision["worse_on_validation"]) == {"pan+pgs", "pgs@warmstart"}
    assert "baseline@warmstart" not in decision["worse_on_validation"]  # not a candidate
    # a control below the converged baseline becomes the twin every variant must beat
    runs[2] = _warm("baseline", 0.1190, energy=3.80, forces=53.0)
    decision = ship.choose("si", runs, _eos(runs))
    assert decision["baseline"] == "baseline@warmstart"
    assert decision["served"] == "baseline@warmstart"
    assert "the baseline twin is baseline@warmstart" in decision["reason"]
    assert ship.architecture("pan+pgs@warmstart") == "pan+pgs"
    with pytest.raises(ship.ShipRuleError, match="without '@'"):
        ship.tag_recipe(runs, "a@b")
    assert ship.parse_recipe("warm=results/warm") == ("warm", "results/warm")
    for bad in ("results/warm", "=x", "warm=", "a@b=x"):
        with pytest.raises(ship.ShipRuleError, match="give TAG=FOLDER"):
            ship.parse_recipe(bad)
    table = ship.markdown({**decision, "recipes": {"warmstart": "results/warmstart"}})
    assert "`warmstart` = `results/warmstart`" in table
    assert "relative to its baseline twin (baseline@warmstart)" in table


def test_undecidable_runs_are_refused():
    with pytest.raises(ship.ShipRuleError, match="no finished baseline"):
        ship.choose("si", [_run("pan", 0, 0.1)], _eos([_run("pan", 0, 0.1)]))
    with pytest.raises(ship.ShipRuleError, match="no seed is finished"):
        ship.choose("si", [_run("pan", 0, 0.1, status="running")])
    runs = [_run("baseline", 0, 0.12), _run("pan", 0, 0.11)]
    with pytest.raises(ship.ShipRuleError, match="no E\\(V\\) check"):
        ship.choose("si", runs, _eos(runs[:1]))


def _copy_run(tmp_path, run, tag):
    """Copy a demo run (and its config) into ``<tag>_configs`` / ``<tag>_runs``."""
    import shutil

    import yaml

    configs, runs = tmp_path / f"{tag}_configs" / "emt", tmp_path / f"{tag}_runs" / "emt"
    configs.mkdir(parents=True)
    shutil.copytree(tmp_path / "runs" / "emt" / run, runs / run)
    config = yaml.safe_load((tmp_path / "configs" / "emt" / f"{run}.yaml").read_text())
    config["out_dir"] = str(runs / run)
    (configs / f"{run}.yaml").write_text(yaml.safe_dump(config))
    return runs


def test_ship_decided_serves_the_chosen_file_under_the_plain_name(
    tmp_path, demo_runs, eval_shipped
):
    """Demo runs (EMT, 1 epoch) -> decision -> shipped registry that pansim eval reads."""
    script = demo_runs(tmp_path, ["baseline", "pan"])
    decide = runpy.run_path(str(ROOT / "scripts" / "ship_decision.py"))
    assert decide["main"](["--system", "emt", "--runs", str(tmp_path / "runs")]) == 0
    decision = json.loads((tmp_path / "runs" / "ship_emt.json").read_text())
    losses = {v: row["valid_loss"] for v, row in decision["variants"].items()}
    wins = losses["pan"] <= losses["baseline"] and "pan" not in decision["worse_on_validation"]
    assert decision["served"] == ("pan" if wins else "baseline")
    dest = tmp_path / "ship"
    dest.mkdir()
    (dest / "emt.safetensors").write_bytes(b"stale")  # a file the old plain name had
    (dest / "registry.json").write_text(json.dumps({"emt": {
        "file": "emt.safetensors", "variant": "pan+pgs", "baseline": "emt-baseline",
        "default": True}}))  # fmt: skip
    argv = ["ship", "--configs", str(tmp_path / "configs"), "--dest", str(dest),
            "--decision", str(tmp_path / "runs" / "ship_emt.json")]  # fmt: skip
    assert script["main"](argv) == 0
    registry = json.loads((dest / "registry.json").read_text())
    served = decision["served"]
    assert registry["emt"]["file"] == f"emt-{served}.safetensors"
    assert registry["emt"]["variant"] == served and registry["emt"]["default"] is True
    assert registry["emt"]["baseline"] == "emt-baseline"
    assert registry["emt-pan"]["baseline"] == "emt-baseline"
    assert not (dest / "emt.safetensors").exists()  # no file left that no entry names
    card = (dest / "emt.md").read_text()
    assert "## Why this model serves this name" in card and decision["reason"] in card
    test_file = json.loads((dest / "emt.json").read_text())["data"]["test_file"]
    again = eval_shipped(dest, "emt", test_file, tmp_path / "eval")
    expect = decision["variants"][served]["test_forces_mae"]
    assert again["forces"]["mae"] == pytest.approx(expect, rel=1e-9)


def test_ship_decided_ships_a_served_variant_of_a_second_recipe(tmp_path, demo_runs, eval_shipped):
    """A second recipe's run that wins ships as <system>-<variant>-<tag>, served by the name."""
    script = demo_runs(tmp_path, ["baseline", "pan"])
    # the second recipe: a copy of the pan run whose validation errors are all lower
    runs = _copy_run(tmp_path, "pan-seed0", "warm")
    history = json.loads((runs / "pan-seed0" / "metrics.json").read_text())
    for row in history:
        for key in ("valid_loss", "valid_energy_mae", "valid_forces_mae", "valid_stress_mae"):
            if row.get(key) is not None:
                row[key] *= 1e-3
    (runs / "pan-seed0" / "metrics.json").write_text(json.dumps(history))
    decide = runpy.run_path(str(ROOT / "scripts" / "ship_decision.py"))
    out = tmp_path / "ship_emt.json"
    argv = ["--system", "emt", "--runs", str(tmp_path / "runs"), "--out", str(out),
            "--recipe", f"warm={tmp_path / 'warm_runs'}"]  # fmt: skip
    assert decide["main"](argv) == 0
    decision = json.loads(out.read_text())
    assert decision["served"] == "pan@warm" and decision["baseline"] == "baseline"
    dest = tmp_path / "ship"
    argv = ["ship", "--configs", str(tmp_path / "configs"), "--dest", str(dest),
            "--decision", str(out), "--recipe", f"warm={tmp_path / 'warm_configs'}"]  # fmt: skip
    assert script["main"](argv) == 0
    registry = json.loads((dest / "registry.json").read_text())
    assert registry["emt"]["file"] == "emt-pan-warm.safetensors"
    assert registry["emt"]["variant"] == "pan" and registry["emt"]["recipe"] == "warm"
    assert registry["emt-pan-warm"]["baseline"] == "emt-baseline"
    assert (
        registry["emt-pan"]["file"] == "emt-pan.safetensors" and "recipe" not in registry["emt-pan"]
    )
    card = (dest / "emt.md").read_text()
    assert "(as `<variant>@warm`)" in card
    test_file = json.loads((dest / "emt.json").read_text())["data"]["test_file"]
    again = eval_shipped(dest, "emt", test_file, tmp_path / "eval")
    assert again["forces"]["mae"] == pytest.approx(
        decision["variants"]["pan@warm"]["test_forces_mae"], rel=1e-9
    )


def test_a_moved_twin_is_kept_for_the_explicit_names_trained_beside_it(tmp_path, demo_runs):
    """A reship whose baseline twin is another run keeps the old twin for names left over."""
    from lab import cards
    from lab.plan import jobs_in

    script = demo_runs(tmp_path, ["baseline", "pan"])
    decide = runpy.run_path(str(ROOT / "scripts" / "ship_decision.py"))
    first = tmp_path / "ship_first.json"
    assert decide["main"](["--system", "emt", "--runs", str(tmp_path / "runs"),
                           "--out", str(first)]) == 0  # fmt: skip
    dest = tmp_path / "ship"
    argv = ["ship", "--configs", str(tmp_path / "configs"), "--dest", str(dest),
            "--decision", str(first)]  # fmt: skip
    assert script["main"](argv) == 0
    old_bytes = (dest / "emt-baseline.safetensors").read_bytes()
    # a second recipe in which only the baseline has run (e.g. a longer schedule)
    _copy_run(tmp_path, "baseline-seed0", "long")
    second = tmp_path / "ship_second.json"
    assert decide["main"](["--system", "emt", "--runs", str(tmp_path / "long_runs"),
                           "--out", str(second)]) == 0  # fmt: skip
    decision = json.loads(second.read_text())
    jobs = jobs_in(tmp_path / "long_configs", ["emt"], root=ROOT)
    # emt-pan was trained beside the first baseline: moving the twin silently is refused
    with pytest.raises(ship.ShipRuleError, match="emt-pan"):
        cards.ship_decided(decision, jobs, dest)
    argv = ["ship", "--configs", str(tmp_path / "long_configs"), "--dest", str(dest),
            "--decision", str(second)]  # fmt: skip
    assert script["main"](argv) == 2
    assert (dest / "emt-baseline.safetensors").read_bytes() == old_bytes  # nothing written
    assert script["main"]([*argv, "--keep-previous-as", "short"]) == 0
    registry = json.loads((dest / "registry.json").read_text())
    assert registry["emt-pan"]["baseline"] == "emt-baseline-short"
    assert registry["emt-pan"]["recipe"] == "short"
    assert registry["emt-baseline-short"]["file"] == "emt-baseline-short.safetensors"
    assert (dest / "emt-baseline-short.safetensors").read_bytes() == old_bytes
    assert registry["emt"]["baseline"] == "emt-baseline"
    kept = json.loads((dest / "emt-baseline-short.json").read_text())
    assert kept["name"] == "emt-baseline-short"
    assert (
        kept["training"]["command"]
        != json.loads((dest / "emt-baseline.json").read_text())["training"]["command"]
    )
    # shipping the same decision again moves nothing and keeps the names as they are
    assert script["main"](argv) == 0
    assert json.loads((dest / "registry.json").read_text()) == registry
