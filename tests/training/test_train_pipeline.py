import json
import runpy
from pathlib import Path

import pytest
import yaml

from lab import ablation, plan
from pansim.backbones import VARIANTS
from pansim.training.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "pretrained"
SYSTEMS = sorted(p.stem for p in (CONFIGS / "base").glob("*.yaml"))


def test_plan_covers_every_system_variant_and_seed():
    assert {"si", "ag", "lif", "ethanol"} <= set(SYSTEMS) and len(SYSTEMS) >= 5
    jobs = plan.jobs_in(CONFIGS)
    assert {(j.system, j.variant, j.seed) for j in jobs} == {
        (s, v, k) for s in SYSTEMS for v in VARIANTS for k in plan.SEEDS
    }


@pytest.mark.parametrize("system", SYSTEMS)
def test_variants_differ_only_in_variant_seed_and_out_dir(system):
    configs = [load_config(j.config).to_dict() for j in plan.jobs_in(CONFIGS, [system])]
    stripped = [{k: v for k, v in c.items() if k not in plan.VARIED} for c in configs]
    assert all(s == stripped[0] for s in stripped)
    assert stripped[0]["hyperparameters"]["num_channels"] == 32


def test_committed_configs_are_the_expansion_of_the_base_files(tmp_path):
    plan.expand(CONFIGS / "base", tmp_path, "results/training")
    for job in plan.jobs_in(CONFIGS):
        assert (tmp_path / job.system / job.config.name).read_text() == job.config.read_text()


def test_aggregate_mean_std_and_relative_change():
    def row(variant, seed, forces, flops):
        m = {"energy_per_atom": {"mae": 2.0}, "forces": {"mae": forces}, "stress": {"mae": None}}
        return {"system": "x", "variant": variant, "seed": seed, "epochs": 3, "metrics": m,
                "flops": flops, "seconds": 1.0}  # fmt: skip

    rows = [row("baseline", 0, 10.0, 100.0), row("baseline", 1, 14.0, 100.0),
            row("pan", 0, 8.0, 103.0), row("pan", 1, 10.0, 103.0)]  # fmt: skip
    table = {e["variant"]: e for e in ablation.aggregate(rows)}
    assert table["baseline"]["forces"]["mean"] == 12.0
    assert table["baseline"]["forces"]["std"] == pytest.approx(2.0**1.5)
    assert table["pan"]["forces"]["change_pct"] == pytest.approx(-25.0)
    assert table["pan"]["flops_ratio"] == pytest.approx(1.03)
    assert table["pan"]["stress"]["mean"] is None
    text = ablation.to_markdown(list(table.values()), note="seeds 0, 1")
    assert "-25.0%" in text and "seeds 0, 1" in text and "-22 to -27%" in text
    one = ablation.aggregate(rows[:1])[0]
    assert one["forces"]["std"] is None  # one seed: no spread, not "± 0"
    row_line = ablation.to_markdown([one]).splitlines()[2]
    assert "(1 seed)" in row_line and "±" not in row_line
    # a variant with fewer seeds is compared with the baseline on its own seeds only
    partial = {e["variant"]: e for e in ablation.aggregate(rows[:3])}
    assert partial["pan"]["forces"]["change_pct"] == pytest.approx(-20.0)  # 8 vs 10, seed 0
    assert partial["baseline"]["forces"]["mean"] == 12.0  # the baseline row keeps both seeds
    # cost is the architecture's, not the seed's: ratios over every baseline seed's timing
    timed = [dict(r, seconds=t) for r, t in zip(rows[:3], (1.0, 3.0, 2.2), strict=True)]
    assert {e["variant"]: e for e in ablation.aggregate(timed)}["pan"][
        "time_ratio"
    ] == pytest.approx(1.1)
    apart = ablation.aggregate([rows[0], row("pan", 5, 8.0, 103.0)])
    assert {e["variant"]: e["forces"]["change_pct"] for e in apart}["pan"] is None
    table["pan"]["variant"] = "pan+pgs"
    (line,) = ablation.verdicts([table["pan"]])
    assert (
        "forces -25.0% (within -27 to -22%)" in line and "energy per atom +0.0% (short of" in line
    )
    table["pan"]["forces"]["change_pct"] = 12.0  # a rise is named as one, not as "short of"
    (line,) = ablation.verdicts([table["pan"]])
    assert "forces +12.0% (worse than the baseline; published -27 to -22%)" in line


def test_demo_pipeline_end_to_end(tmp_path, demo_runs, eval_shipped):
    script = demo_runs(tmp_path, ["baseline", "pan+pgs"])
    result = json.loads((tmp_path / "ablation" / "ablation.json").read_text())
    assert len(result["runs"]) == 2
    assert {e["variant"] for e in result["table"]} == {"baseline", "pan+pgs"}
    assert all(e["flops"] > 0 for e in result["table"])
    assert all(r["timed_at"].endswith("Z") and r["load_1min"] >= 0 for r in result["runs"])
    assert f"timed {result['runs'][0]['timed_at']} at load" in result["note"]
    assert "emt: seeds [0] (fewer seeds than planned), epochs [1]" in result["note"]
    assert "| emt | pan+pgs | 1 | 1 |" in (tmp_path / "ablation" / "ablation.md").read_text()
    config = yaml.safe_load((tmp_path / "configs" / "emt" / "pan+pgs-seed0.yaml").read_text())
    assert config["seed"] == 0 and config["variant"] == "pan+pgs"

    # shipped models + cards; `pansim eval` reproduces the card's test metrics
    ship = tmp_path / "ship"
    assert (
        script["main"](["ship", "--configs", str(tmp_path / "configs"), "--dest", str(ship)]) == 0
    )
    names = sorted(p.name for p in ship.iterdir())
    files = [f"emt{s}.{e}" for s in ("-baseline", "") for e in ("json", "md", "safetensors")]
    assert names == sorted([*files, "registry.json"])
    card = json.loads((ship / "emt.json").read_text())
    assert card["variant"] == "pan+pgs" and card["data_sha256"]["train_file"]
    assert card["data_sizes"]["test_file"] > 0 and card["reference"]
    settings = card["training"]["settings"]
    assert settings["forces_weight"] > 0 and settings["seed"] == 0 and settings["lr"] > 0
    assert card["training"]["command"].startswith("pansim train ")
    assert "training settings: `" in (ship / "emt.md").read_text()
    registry = json.loads((ship / "registry.json").read_text())
    assert registry["emt"] == {"file": "emt.safetensors", "card": "emt.md", "system": "emt",
                               "variant": "pan+pgs", "baseline": "emt-baseline"}  # fmt: skip
    # by registered name, as a user of the shipped models would
    again = eval_shipped(ship, "emt", card["data"]["test_file"], tmp_path / "eval")
    for key in ("energy_per_atom", "forces", "stress"):
        assert again[key]["mae"] == pytest.approx(card["test_metrics"][key]["mae"], rel=1e-9)


def test_ablation_table_merges_other_backbone_rows(tmp_path):
    script = runpy.run_path(str(ROOT / "scripts" / "ablation_table.py"))
    m = {"energy_per_atom": {"mae": 1.0}, "forces": {"mae": 20.0}, "stress": {"mae": None}}
    runs = [{"system": f"{s} (nequip)", "variant": v, "seed": 0, "epochs": 2, "metrics": m,
             "flops": 1.0, "seconds": 1.0}
            for s in ("si", "ethanol") for v in ("baseline", "pan+pgs")]  # fmt: skip
    path = tmp_path / "ablation.json"
    path.write_text(json.dumps({"note": "", "table": [], "runs": runs}))
    assert len(script["merged_rows"]([path, tmp_path / "missing.json"])) == 4
    assert {r["system"] for r in script["merged_rows"]([path], ["si"])} == {"si (nequip)"}
    path.write_text(json.dumps({"table": []}))
    with pytest.raises(SystemExit, match="per-run rows"):
        script["merged_rows"]([path])


def test_ablation_table_rebuilt_from_stored_rows_names_seeds_per_variant(tmp_path, capsys):
    script = runpy.run_path(str(ROOT / "scripts" / "ablation_table.py"))
    m = {"energy_per_atom": {"mae": 1.0}, "forces": {"mae": 20.0}, "stress": {"mae": None}}
    runs = [{"system": "lif", "variant": v, "seed": k, "epochs": 100, "metrics": m,
             "flops": 1.0, "seconds": 1.0 + k}
            for v, seeds in (("baseline", (0, 1, 2)), ("pan", (0,))) for k in seeds]  # fmt: skip
    runs += [dict(r, system="si") for r in runs if r["seed"] == 0]
    stored = tmp_path / "stored.json"
    stored.write_text(json.dumps({"note": "", "table": [], "runs": runs}))
    out = tmp_path / "out"
    assert script["main"](["--rows-from", str(stored), "--out", str(out)]) == 0
    text = (out / "ablation.md").read_text()
    assert "lif: seeds [0, 1, 2] (baseline), [0] (pan) (fewer seeds than planned)" in text
    assert "si: seeds [0] (fewer seeds than planned)" in text
    table = {
        (e["system"], e["variant"]): e
        for e in json.loads((out / "ablation.json").read_text())["table"]
    }
    assert table[("lif", "pan")]["time_ratio"] == pytest.approx(1.0 / 2.0)  # over all 3 baselines
    assert len(json.loads((out / "ablation.json").read_text())["runs"]) == len(runs)
    assert "wrote" in capsys.readouterr().out


def test_ablation_rows_from_later_file_replace_that_system(tmp_path):
    script = runpy.run_path(str(ROOT / "scripts" / "ablation_table.py"))
    m = {"energy_per_atom": {"mae": 1.0}, "forces": {"mae": 20.0}, "stress": {"mae": None}}

    def stored(name, system_seeds):
        runs = [{"system": system, "variant": "baseline", "seed": k, "epochs": 1, "metrics": m,
                 "flops": 1.0, "seconds": 1.0}
                for system, seeds in system_seeds.items() for k in seeds]  # fmt: skip
        path = tmp_path / name
        path.write_text(json.dumps({"note": "", "table": [], "runs": runs}))
        return path

    committed = stored("committed.json", {"si": (0, 1, 2), "ag": (0,)})
    update = stored("ag.json", {"ag": (0, 1)})
    rows = script["stored_rows"]([committed, update])
    expected = [("ag", 0), ("ag", 1), ("si", 0), ("si", 1), ("si", 2)]
    assert sorted((r["system"], r["seed"]) for r in rows) == expected
    with pytest.raises(SystemExit, match="no such file"):
        script["stored_rows"]([committed, tmp_path / "missing.json"])
    earlier = stored("c2.json", {"ag": (0,), "si": (0,), "lif": (0,)})
    ordered = script["stored_rows"]([earlier, update])
    assert [r["system"] for r in ordered] == ["ag", "ag", "si", "lif"]  # ag keeps its place


def test_compression_script_rows_from_shipped_models(tmp_path):
    script = runpy.run_path(str(ROOT / "scripts" / "compression_by_variant.py"))
    runs = [("baseline", 0, "si-baseline"), ("pan", 0, "si-pan")]  # a shipped model with PAN
    script["system_rows"].__globals__["finished_runs"] = lambda system: runs
    out = tmp_path / "c.md"
    text = script["main"](["--systems", "si", "--out", str(out)])
    assert out.read_text() == text
    props = json.loads((ROOT / "data" / "si" / "reference" / "properties.json").read_text())
    eos = props["eos"]
    dft = dict(zip(eos["compressed"]["volume_ratio"], eos["compressed"]["energy"], strict=True))
    assert f"| si | DFT | - | {dft[0.8] - eos['E0']:.4f} |" in text
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| si |")]
    energies = {r[1].strip(): [float(x) for x in r[3:5]] for r in rows if len(r) == 5}
    assert set(energies) == {"DFT", "baseline", "pan"}
    for e08, e09 in energies.values():
        assert e08 > e09 > 0  # compression costs energy, more at 0.80 V0
    (coordination,) = [r for r in rows if len(r) == 8]
    c_v0, c_09, c_08 = (float(x) for x in coordination[1:4])
    assert 0 < c_v0 < c_09 < c_08  # neighbours move in: PAN's coordination rises


def test_run_jobs_side_by_side_with_threads(tmp_path, monkeypatch):
    script = runpy.run_path(str(ROOT / "scripts" / "train_pretrained.py"))
    calls = []

    def fake_call(cmd, cwd=None, env=None):
        calls.append((cmd, env["OMP_NUM_THREADS"]))
        return 0

    monkeypatch.setattr(script["subprocess"], "call", fake_call)
    # whatever the repository's runs are by now, these two count as not yet trained
    monkeypatch.setattr(plan, "status", lambda job: "todo")
    argv = ["run", "--systems", "ethanol", "--variants", "pan", "pgs", "--seeds", "2",
            "--jobs", "2", "--threads", "1", "--runs", str(tmp_path)]  # fmt: skip
    assert script["main"](argv) == 0
    configs = sorted(next(a for a in cmd if a.endswith(".yaml")) for cmd, _ in calls)
    assert [Path(c).name for c in configs] == ["pan-seed2.yaml", "pgs-seed2.yaml"]
    assert {threads for _, threads in calls} == {"1"}
    with pytest.raises(SystemExit, match="in-process"):
        script["main"]([*argv, "--in-process"])


def test_run_orders_jobs_by_seed_with_the_shipped_pair_first(monkeypatch):
    script = runpy.run_path(str(ROOT / "scripts" / "train_pretrained.py"))
    calls = []
    monkeypatch.setattr(
        script["subprocess"], "call", lambda cmd, cwd=None, env=None: calls.append(cmd) or 0
    )
    monkeypatch.setattr(plan, "status", lambda job: "todo")
    assert script["main"](["run", "--systems", "si", "--seeds", "1", "0"]) == 0
    names = [Path(next(a for a in cmd if a.endswith(".yaml"))).stem for cmd in calls]
    assert names == [
        "baseline-seed0", "pan+pgs-seed0", "pan-seed0", "pgs-seed0",
        "baseline-seed1", "pan+pgs-seed1", "pan-seed1", "pgs-seed1",
    ]  # fmt: skip


def test_run_skips_systems_whose_data_is_still_being_labelled(tmp_path, monkeypatch, capsys):
    script = runpy.run_path(str(ROOT / "scripts" / "train_pretrained.py"))
    from pansim.data.manifest import Manifest

    data = tmp_path / "data" / "si"
    data.mkdir(parents=True)
    manifest = Manifest(data / "manifest.json")
    for key in ("a", "b"):
        manifest.add(key, {"code": "gpaw"}, {}, key)
    manifest.mark_done("a", {"ok": True})
    manifest.save()
    base = yaml.safe_load((ROOT / "configs" / "pretrained" / "si" / "pan-seed0.yaml").read_text())
    config = tmp_path / "configs" / "si" / "pan-seed0.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(yaml.safe_dump({**base, "train_file": str(data / "train.extxyz"),
                                      "out_dir": str(tmp_path / "runs")}))  # fmt: skip
    calls = []

    def fake_call(cmd, cwd=None, env=None):
        calls.append(cmd)
        return 0

    monkeypatch.setattr(script["subprocess"], "call", fake_call)
    argv = ["run", "--configs", str(tmp_path / "configs")]
    assert script["main"](argv) == 0 and calls == []
    err = capsys.readouterr().err
    assert "skipping si:" in err and "has 1 configurations still to label" in err
    assert script["main"]([*argv, "--allow-incomplete-data"]) == 0 and len(calls) == 1
    manifest.mark_done("b", {"ok": True})
    manifest.save()
    calls.clear()
    assert script["main"](argv) == 0 and len(calls) == 1


def _queue(tmp_path, stages) -> Path:
    path = tmp_path / "queue.yaml"
    path.write_text(yaml.safe_dump(stages))
    return path


def test_queue_runs_its_stages_in_order_as_one_list(tmp_path, monkeypatch):
    script = runpy.run_path(str(ROOT / "scripts" / "train_pretrained.py"))
    calls = []
    monkeypatch.setattr(
        script["subprocess"], "call", lambda cmd, cwd=None, env=None: calls.append(cmd) or 0
    )
    monkeypatch.setattr(plan, "status", lambda job: "todo")
    queue = _queue(tmp_path, [
        {"configs": "configs/converged", "systems": ["lif"], "variants": ["pan+pgs"],
         "seeds": [0]},
        {"configs": "configs/converged", "systems": ["si"], "seeds": [1]},
        {"configs": "configs/converged", "systems": ["lif"], "seeds": [0]},  # pan+pgs again
    ])  # fmt: skip
    assert script["main"](["run", "--queue", str(queue), "--jobs", "1"]) == 0
    names = [
        Path(next(a for a in cmd if a.endswith(".yaml"))).resolve().relative_to(ROOT / "configs")
        for cmd in calls
    ]
    assert [str(n) for n in names] == [
        "converged/lif/pan+pgs-seed0.yaml",
        "converged/si/baseline-seed1.yaml", "converged/si/pan+pgs-seed1.yaml",
        "converged/si/pan-seed1.yaml", "converged/si/pgs-seed1.yaml",
        "converged/lif/baseline-seed0.yaml", "converged/lif/pan-seed0.yaml",
        "converged/lif/pgs-seed0.yaml",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([], "non-empty YAML list"),
        ([{"systems": ["si"]}], "'configs' folder is required"),
        ([{"configs": "configs/converged", "seed": [0]}], r"unknown keys \['seed'\]"),
        ([{"configs": "configs/nowhere"}], "no folder"),
        ([{"configs": "configs/converged", "systems": ["xx"]}], "selects no config"),
    ],
)
def test_bad_queue_is_a_clear_error(tmp_path, stages, message):
    script = runpy.run_path(str(ROOT / "scripts" / "train_pretrained.py"))
    with pytest.raises(SystemExit, match=message):
        script["main"](["list", "--queue", str(_queue(tmp_path, stages))])


def test_committed_queue_names_existing_configs():
    stages = plan.read_queue(ROOT / "configs" / "queue.yaml", root=ROOT)
    assert all(stages)


def test_snapshot_and_restore_of_a_partial_run(tmp_path, monkeypatch):
    """A clone has ``checkpoint.pt.xz`` only; ``run`` unpacks it and resumes."""
    base = yaml.safe_load((ROOT / "configs" / "converged" / "si" / "pan-seed0.yaml").read_text())
    out = tmp_path / "runs" / "si" / "pan-seed0"
    config = tmp_path / "configs" / "si" / "pan-seed0.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(yaml.safe_dump({**base, "out_dir": str(out)}))
    (job,) = plan.jobs_in(tmp_path / "configs")
    assert plan.status(job) == "todo" and not plan.snapshot_checkpoint(job)
    out.mkdir(parents=True)
    payload = bytes(range(256)) * 1000
    (out / "checkpoint.pt").write_bytes(payload)
    assert plan.snapshot_checkpoint(job) and (out / plan.SNAPSHOT).exists()
    assert not plan.snapshot_checkpoint(job)  # the snapshot is up to date
    (out / "checkpoint.pt").unlink()  # what a clone has
    assert plan.status(job) == "partial"

    script = runpy.run_path(str(ROOT / "scripts" / "train_pretrained.py"))
    calls = []
    monkeypatch.setattr(
        script["subprocess"], "call",
        lambda cmd, cwd=None, env=None: calls.append((cmd, (out / "checkpoint.pt").exists())) or 0,
    )  # fmt: skip
    assert script["main"](["run", "--configs", str(tmp_path / "configs")]) == 0
    ((cmd, unpacked),) = calls
    assert unpacked and cmd[-1] == "--resume"
    assert (out / "checkpoint.pt").read_bytes() == payload
    assert not plan.snapshot_checkpoint(job)  # unpacked copy is not newer than its source
    (out / "summary.json").write_text(json.dumps({"stop_reason": "early_stopping"}))
    assert plan.status(job) == "done" and not plan.snapshot_checkpoint(job)
