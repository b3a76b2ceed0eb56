"""The benchmark scripts run: each main() on its smallest configuration (tiny model, one round)."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def benchmarks(monkeypatch):
    """The ``benchmarks`` package of this checkout, importable (it is not installed)."""
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("benchmarks.run_all")


def _smoke(run_all, name: str, out_dir: Path) -> list[str]:
    (step,) = [s for s in run_all.PRESETS["smoke"] if s.benchmark == name]
    args = step.args.split() + ["--out-dir", str(out_dir)]
    return args + ["--hyperparameters", json.dumps(run_all.TINY)]


@pytest.mark.parametrize("name", ["overhead", "calculator", "scaling", "batched", "chunked"])
def test_benchmark_main_runs(benchmarks, name, tmp_path):
    module = importlib.import_module(f"benchmarks.{name}")
    result = module.main(_smoke(benchmarks, name, tmp_path))
    assert result["benchmark"] == name and result["preset"] == "quick"
    assert {"machine", "versions", "date", "markdown"} <= set(result)
    assert json.loads((tmp_path / f"{name}.json").read_text())["benchmark"] == name
    assert (tmp_path / f"{name}.md").read_text().startswith(f"# {name} (quick preset)")
    CHECKS[name](result)


def _overhead(result):
    rows = result["rows"]
    assert [r["variant"] for r in rows] == ["baseline", "pan+pgs"]
    assert rows[0]["flops_ratio"] == 1.0 and all(r["gflops"] > 0 for r in rows)
    assert result["skipped"] == [] and rows[0]["rss_peak_mb"] > 0  # measured in a child


def test_overhead_large_cells_run_one_process_per_variant_and_round(benchmarks, tmp_path):
    from benchmarks import overhead

    argv = _smoke(benchmarks, "overhead", tmp_path) + ["--separate-from", "8", "--min-rounds", "2"]
    result = overhead.main(argv)
    rows = result["rows"]
    assert [r["variant"] for r in rows] == ["baseline", "pan+pgs"]
    assert all(r["mode"] == "one process per variant and round" and r["rounds"] == 2 for r in rows)
    assert rows[0]["flops_ratio"] == 1.0 and rows[1]["flops_ratio"] > 1.0
    assert rows[0]["wall_ratio"] == 1.0 and rows[1]["median_wall_ms"] > 0
    assert "8 atoms: one process per variant and round (2 rounds" in result["markdown"]


def test_overhead_skips_a_size_that_would_not_fit_in_memory(benchmarks, tmp_path, monkeypatch):
    from benchmarks import _common, overhead

    argv = _smoke(benchmarks, "overhead", tmp_path) + ["--sizes", "8", "64"]
    monkeypatch.setattr(_common, "available_mb", lambda: 1.0)  # 1 MiB free: 64 atoms cannot fit
    result = overhead.main(argv)
    assert {r["atoms"] for r in result["rows"]} == {8}
    (skip,) = result["skipped"]
    assert skip["atoms"] == 64 and skip["why"].startswith("stopped before 64 atoms: estimated peak")
    assert "Not measured: 64 atoms float64: stopped before 64 atoms" in result["markdown"]


def _calculator(result):
    (size,) = result["sizes"]
    assert max(size["agreement"].values()) < 1e-10  # same weights in pansim and mace (float64)
    assert {"single_point", "nve", "stages", "neighbour_lists"} <= set(size)
    # the A/A control: a second MACECalculator timed in the same rounds, reported beside pansim
    control = size["nve_control"]
    assert (
        control["calculator"] == "mace (again)"
        and control["mace_wall_s"] == size["nve"]["mace_wall_s"]
    )
    assert size["single_point_control"]["wall_ratio"] > 0
    assert "| mace (again) |" in result["markdown"]


def _scaling(result):
    assert [r["atoms"] for r in result["rows"]] == [8]


def _batched(result):
    assert result["all_within_tolerance"]  # batched == serial to 1e-10 in float64


def test_torchsim_benchmark_runs(benchmarks, tmp_path):
    pytest.importorskip("torch_sim", reason="torch-sim missing: pip install pansim[torchsim]")
    from benchmarks import run_all, torchsim

    argv = ["--quick", "--cells", "2", "--steps", "2", "--out-dir", str(tmp_path)]
    result = torchsim.main(argv + ["--hyperparameters", json.dumps(run_all.TINY)])
    (row,) = result["rows"]
    assert row["cells"] == 2 and row["torchsim_wall_s"] > 0 and row["ase_wall_s"] > 0
    assert run_all.SUMMARIES["torchsim"](result, "quick")[0]["result"].endswith("x CPU)")


def test_lammps_benchmark_runs(benchmarks, tmp_path):
    """The --quick preset, smaller still: 1 step, the ASE loop and LAMMPS on 2 MPI ranks."""
    from pansim.lammps_external import LammpsSetupError, load_lammps

    try:
        load_lammps()
    except LammpsSetupError as err:
        pytest.skip(str(err))
    from benchmarks import lammps, run_all

    argv = ["--quick", "--steps", "1", "--runs", "ase", "lammps-np2", "--r-max", "2.6",
            "--out-dir", str(tmp_path), "--hyperparameters", json.dumps(run_all.TINY)]  # fmt: skip
    result = lammps.main(argv)
    ase, np2 = result["rows"]
    assert (ase["run"], np2["run"], np2["ranks"]) == ("ase", "lammps-np2", 2)
    assert result["atoms"] == 64 and result["preset"] == "quick"
    assert ase["evaluated_ratio"] == 1 and np2["evaluated_ratio"] > 1  # each rank: + ghosts
    assert np2["wall_us_per_atom_step"] > 0 and np2["cpu_vs_ase"] > 0
    assert abs(np2["energy_per_atom"] - ase["energy_per_atom"]) < 1e-4  # same trajectory
    (row,) = run_all.SUMMARIES["lammps"](result, "quick")
    assert "lammps-np2" in row["result"] and row["measurement"].endswith("(quick preset)")
    assert (tmp_path / "lammps.md").read_text().startswith("# lammps (quick preset)")


def _chunked(result):
    (row,) = result["rows"]  # 512 atoms in chunks of at most 300 (owned + halo)
    assert row["atoms"] == 512 and row["chunks"] > 1 and row["largest_chunk"] <= 300
    assert row["evaluated_ratio"] > 1 and row["rss_peak_mb"] > 0  # measured in a child
    assert result["stopped"].startswith("completed")


CHECKS = {"overhead": _overhead, "calculator": _calculator, "scaling": _scaling,
          "batched": _batched, "chunked": _chunked}  # fmt: skip


def test_run_all_writes_readme(benchmarks, tmp_path):
    argv = ["--preset", "smoke", "--only", "scaling", "--out-dir", str(tmp_path)]
    results = benchmarks.main(argv)
    assert set(results) == {"scaling"} and results["scaling"]["name"] == "scaling"
    saved = json.loads((tmp_path / "smoke" / "scaling.json").read_text())
    check = saved["run_all"]["quiet_check_before_step"]  # recorded, nothing paused
    assert {"load_1min", "busy_processes", "busy"} <= set(check)
    assert saved["run_all"]["OMP_NUM_THREADS"] == "1"
    manifest = json.loads((tmp_path / "smoke" / "run.json").read_text())
    assert [s["step"] for s in manifest["steps"]] == ["scaling"]
    text = (tmp_path / "smoke" / "README.md").read_text()
    for needle in ("smoke", "machine:", "torch thread", "mace-torch", "e3nn", "## scaling",
                   "## Summary", "| measurement | result | target | met? |",
                   "other busy process", "Not run yet"):  # fmt: skip
        assert needle in text, needle
    (tmp_path / "smoke" / "README.md").unlink()
    benchmarks.main(["--readme-only", "--preset", "smoke", "--out-dir", str(tmp_path)])
    assert "## scaling" in (tmp_path / "smoke" / "README.md").read_text()


def test_presets_name_their_steps_consistently(benchmarks):
    full = {s.name: s for s in benchmarks.PRESETS["full"]}
    assert {s.name for s in benchmarks.PRESETS["quick"]} <= set(full)  # quick fills in for full
    assert full["overhead"].args == "" and "--shipped" in full["overhead-shipped"].args
    scaling = full["scaling-shipped"].args.split()
    assert "--shipped" in scaling and {"float32", "float64"} <= set(scaling)
    batched = {n: s.threads for n, s in full.items() if s.benchmark == "batched"}
    assert batched == {"batched-shipped-1thread": 1, "batched-shipped-2threads": 2,
                       "batched-defaults-2threads": 2}  # fmt: skip
    args = benchmarks.main.__globals__["arguments"](
        "full", full["batched-shipped-2threads"],
        argparse.Namespace(threads=1, out_dir=Path("/x"), hyperparameters={}),
    )  # fmt: skip
    assert args[args.index("--threads") + 1] == "2" and args[args.index("--name") + 1] == (
        "batched-shipped-2threads"
    )
    assert args[args.index("--out-dir") + 1] == str(Path("/x/full"))


def _fake(benchmark: str, name: str, preset: str, **fields) -> dict:
    machine = {"cpu": "test CPU", "cores": 2, "usable_cores": 2, "torch_threads": 1,
               "OMP_NUM_THREADS": "1", "load_average_1_5_15": [0.1, 0.1, 0.1],
               "platform": "test"}  # fmt: skip
    return {"benchmark": benchmark, "name": name, "preset": preset, "date": "2026-01-01",
            "duration_s": 60.0, "repeats": 3, "threads": fields.pop("threads", 1),
            "hyperparameters": fields.pop("hyperparameters", "pansim.backbones.mace.DEFAULTS"),
            "machine": machine, "versions": {"torch": "test"}, **fields}  # fmt: skip


def _row(n, dtype, cpu):
    return {"atoms": n, "dtype": dtype, "edges": 28 * n, "median_wall_s": 1.0,
            "wall_us_per_atom": cpu, "cpu_us_per_atom": cpu, "time_per_atom_rel": 1.0,
            "eval_memory_mb": n / 1024, "eval_kb_per_atom": 1.0, "rss_peak_mb": 1.0}  # fmt: skip


def test_readme_only_renders_what_it_has(benchmarks, tmp_path):
    """Full results where present, quick ones (labelled) else, 'not run yet' for the rest."""
    full, quick = tmp_path / "full", tmp_path / "quick"
    full.mkdir()
    quick.mkdir()
    overhead_rows = [
        {"atoms": 64, "dtype": "float64", "variant": v, "rounds": 3, "gflops": 1.0,
         "flops_ratio": f, "median_wall_ms": 1.0, "wall_ratio": w, "cpu_ratio": c}
        for v, f, w, c in [("baseline", 1.0, 1.0, 1.0), ("pan+pgs", 1.001, 1.08, 1.02)]
    ]  # fmt: skip
    (quick / "overhead.json").write_text(json.dumps(_fake("overhead", "overhead", "quick",
                                                          rows=overhead_rows)))  # fmt: skip
    scaling = _fake(
        "scaling", "scaling-shipped", "full", variant="pan+pgs", dtype=["float32"],
        backbone="configs/pretrained/base/si.yaml", computed="energy + forces",
        rows=[_row(100, "float32", 2000.0), _row(1000, "float32", 1000.0),
              _row(9680, "float32", 1100.0)],
        stopped={"float32": "stopped before 20384 atoms: estimated peak 19.2 GiB (from 9680 "
                            "atoms, 962 KiB/atom) > 85% of the 20.4 GiB available"},
        provenance={"note": "by hand.", "command": "python -m benchmarks.scaling --shipped"},
    )  # fmt: skip
    (full / "scaling-shipped.json").write_text(json.dumps(scaling))
    batched = _fake(
        "batched", "batched-shipped-2threads", "full", threads=2, dtype="float64",
        batch_size=16, backbone="configs/pretrained/base/si.yaml",
        rows=[{"workload": "phonons-8", "structures": 13, "atoms_each": 8,
               "properties": "energy+forces", "serial_wall_s": 3.0, "batched_wall_s": 1.0,
               "speedup_wall": 3.0, "speedup_cpu": 3.1, "max_abs_diff": 0.0,
               "within_tolerance": True}],
    )  # fmt: skip
    (full / "batched-shipped-2threads.json").write_text(json.dumps(batched))
    results = benchmarks.main(["--readme-only", "--out-dir", str(tmp_path)])
    assert set(results) == {"overhead", "scaling-shipped", "batched-shipped-2threads"}
    text = (tmp_path / "README.md").read_text()
    summary = text[text.index("## Summary") : text.index("## overhead")]
    lines = {line.split(" | ")[0]: line for line in summary.splitlines() if line.startswith("|")}
    flops = next(v for k, v in lines.items() if k.startswith("| FLOPs"))
    assert "(quick preset)" in flops and flops.endswith("| <= 1.05 | yes |")
    wall = next(v for k, v in lines.items() if k.startswith("| wall time"))
    assert wall.endswith("| no (CPU time: yes) |")
    scaling_line = next(v for k, v in lines.items() if "per atom" in k)
    assert "largest 9680 atoms" in scaling_line and "1000 atoms: 1.10" in scaling_line
    assert scaling_line.endswith("| flat: yes; ~20000 atoms: no |")
    assert "(from 9680" not in scaling_line
    batched_line = next(v for k, v in lines.items() if "batched" in k)
    assert "3.00x wall" in batched_line and batched_line.endswith("| yes |")
    assert "## overhead-shipped (shipped backbone size)\n\nNot run yet" in text
    assert "## calculator" in text and "*quick preset*" in text and "*full preset*" in text
    assert "Provenance: by hand." in text
    assert (tmp_path / "full" / "scaling-shipped.md").exists()


def test_project_readme_summary_is_rewritten_between_its_markers(benchmarks, tmp_path, monkeypatch):
    common = importlib.import_module("benchmarks._common")
    (tmp_path / "full").mkdir()
    rows = [_row(1000, "float32", 1000.0), _row(9680, "float32", 1500.0)]
    rows[0]["user_us_per_atom"], rows[1]["user_us_per_atom"] = 950.0, 1000.0
    scaling = _fake("scaling", "scaling-shipped", "full", variant="pan+pgs", dtype=["float32"],
                    rows=rows, stopped={"float32": "completed"}, computed="energy + forces",
                    backbone="configs/pretrained/base/si.yaml")  # fmt: skip
    (tmp_path / "full" / "scaling-shipped.json").write_text(json.dumps(scaling))
    start, end = benchmarks.README_MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"# project\n\nbefore\n\n{start} -->\nold table\n{end}\n\nafter\n")
    assert not benchmarks.update_project_readme(tmp_path, readme)  # not the project's folder
    assert "old table" in readme.read_text()
    monkeypatch.setattr(common, "OUT_DIR", tmp_path)
    assert benchmarks.update_project_readme(tmp_path, readme)
    text = readme.read_text()
    assert text.startswith("# project\n\nbefore\n\n") and text.endswith(f"{end}\n\nafter\n")
    assert "old table" not in text and "Machine: test CPU, 2 cores; 1 torch thread unless" in text
    (line,) = [ln for ln in text.splitlines() if "per atom" in ln]
    assert "user CPU time per atom (without the kernel's share) 1.05" in line
    assert line.endswith("| flat: no (user time: yes); ~20000 atoms: no |")
    again = readme.read_text()
    assert benchmarks.update_project_readme(tmp_path, readme) and readme.read_text() == again


def test_quiet_check_records_without_touching_anything(benchmarks):
    common = importlib.import_module("benchmarks._common")
    check = common.quiet_check(interval=0.05)
    assert check["load_1min"] >= 0 and "busy" in check
    assert "load average" in common.describe_quiet(check)
    with pytest.raises(SystemExit):
        benchmarks.main(["--quiet-check"])


def test_overhead_rounds_shrink_for_large_cells(benchmarks):
    common = importlib.import_module("benchmarks._common")
    assert common.rounds(10, 64, 512) == 20 and common.rounds(10, 4096, 512) == 10
    assert common.rounds(10, 4096, 512, floor=3) == 3 and common.rounds(10, 512, 512, floor=3) == 10


@pytest.mark.slow
def test_scaling_in_child_processes(benchmarks, tmp_path):
    scaling = importlib.import_module("benchmarks.scaling")
    argv = ["--sizes", "8", "64", "--repeats", "1", "--out-dir", str(tmp_path)]
    result = scaling.main(argv + ["--hyperparameters", json.dumps(benchmarks.TINY)])
    assert [r["atoms"] for r in result["rows"]] == [8, 64]
    assert result["rows"][1]["eval_memory_mb"] > 0


def test_scaling_stops_before_running_out_of_memory(benchmarks, monkeypatch):
    """The next size is not started when the previous one's memory per atom says it won't fit."""
    scaling = importlib.import_module("benchmarks.scaling")
    measured = []

    def fake_child(n, dtype, args):
        measured.append(n)
        row = {
            "atoms": n,
            "dtype": dtype,
            "rss_setup_mb": 500.0,
            "rss_peak_mb": 500.0 + n,
            "eval_kb_per_atom": 1024.0,
        }
        return {**row, "cpu_us_per_atom": 1.0, "eval_memory_mb": n / 1.0}, None

    monkeypatch.setattr(scaling, "run_child", fake_child)
    # 1 MiB/atom: about 1200 atoms fit
    monkeypatch.setattr(scaling.common, "available_mb", lambda: 2000.0)
    args = argparse.Namespace(sizes=[64, 512, 1728], max_atoms=20000, in_process=False,
                              memory_fraction=0.85)  # fmt: skip
    rows, stopped = scaling.scan(args, "float32")
    assert measured == [64, 512] and [r["atoms"] for r in rows] == [64, 512]
    assert stopped.startswith("stopped before 1728 atoms: estimated peak") and "85%" in stopped


def test_scaling_shipped_backbone_is_the_pretrained_config(benchmarks):
    scaling = importlib.import_module("benchmarks.scaling")
    hyperparameters = scaling.config_hyperparameters(scaling.SHIPPED_CONFIG)
    assert hyperparameters["num_channels"] == 32 and hyperparameters["max_L"] == 1
    assert hyperparameters["radial_MLP"] == [32, 32]
    common = importlib.import_module("benchmarks._common")
    args = argparse.Namespace(shipped=True, config=None, hyperparameters={"num_channels": 8})
    assert common.resolve_backbone(args) == "configs/pretrained/base/si.yaml"
    assert args.hyperparameters["num_channels"] == 8  # overrides win
    assert args.hyperparameters["radial_MLP"] == [32, 32]


def test_profile_overhead_attributes_the_variants_extra_ops(benchmarks, tmp_path, capsys):
    from benchmarks import profile_overhead

    tiny = json.dumps(benchmarks.TINY)
    argv = ["--atoms", "8", "--calls", "3", "--top", "1000", "--dtype", "float64",
            "--json", str(tmp_path / "p.json"), "--hyperparameters", tiny]  # fmt: skip
    result = profile_overhead.main(argv)
    base, var = (result["ops_us_per_call"][v] for v in ("baseline", "pan+pgs"))
    assert result["atoms"] == 8 and result["calls"] == 3
    assert any(op.startswith("backward ") for op in base)
    # the ES readout squashes scalars with tanh; the baseline MACE has no tanh
    assert "forward aten::tanh" in var and "forward aten::tanh" not in base
    printed = capsys.readouterr().out
    assert "| forward aten::tanh | 0.0 |" in printed and "| total |" in printed
    assert json.loads((tmp_path / "p.json").read_text())["meta"]["versions"]


def test_model_call_benchmark_times_pansim_mace_and_the_control(benchmarks):
    from benchmarks import model_call

    out = model_call.main(["--atoms", "8", "--rounds", "1", "--no-write"])
    assert set(out["ratios"]) == {"pansim", "mace", "mace (again)"}
    assert out["ratios"]["pansim"]["cpu_s"] > 0 and out["ratios"]["pansim"]["cpu_ratio"] > 0
    # the timed sides compute the same energy, forces and stress (same weights)
    assert set(out["agreement"]) == {"energy", "forces", "stress"}
    assert max(out["agreement"].values()) < 1e-8
    assert out["machine"] and out["versions"]["mace-torch"]


def test_model_call_profile_lists_per_op_medians_beside_the_control(benchmarks, capsys, tmp_path):
    from benchmarks import model_call

    argv = ["--atoms", "8", "--repeats", "1", "--profile", "2", "--top", "3",
            "--out-dir", str(tmp_path)]  # fmt: skip
    out = model_call.main(argv)
    ops = out["profile_ms_per_call"]
    assert set(ops) == {"pansim", "mace", "mace (again)"}
    for side in ops.values():
        assert any(op.startswith("backward ") for op in side)
        assert side["total"] >= max(t for op, t in side.items() if op != "total") > 0
    table = capsys.readouterr().out.split("profile, 2 interleaved rounds")[1]
    assert table.count("\n| ") == 2 + 3 + 1  # header, 3 ops, total
    assert "| total |" in table
    saved = json.loads((tmp_path / "model_call.json").read_text())
    assert saved["profile_ms_per_call"]["mace"]["total"] == ops["mace"]["total"]


def test_profile_scaling_splits_each_sizes_ops_into_forward_and_backward(benchmarks, capsys):
    from benchmarks import profile_scaling

    tiny = json.dumps(benchmarks.TINY)
    rows = profile_scaling.main(["--sizes", "8", "16", "--top", "5", "--hyperparameters", tiny])
    assert [r["atoms"] for r in rows] == [8, 16]
    for r in rows:
        ops, totals = r["ops_us_per_atom"], r["profiled_us_per_atom"]
        assert totals["forward"] > 0 and totals["backward"] > 0
        # the per-phase totals are the sums of that phase's ops
        backward = sum(t for op, t in ops.items() if op.startswith("backward "))
        assert totals["backward"] == pytest.approx(backward)
        assert "backward autograd::engine::evaluate_function: MulBackward0" in ops
    assert "| op | us/atom at 8 | us/atom at 16 |" in capsys.readouterr().out


def test_training_step_benchmark_times_both_precisions(benchmarks, tmp_path):
    module = importlib.import_module("benchmarks.training_step")
    argv = ["--system", "si", "--variants", "baseline", "--repeats", "1",
            "--out-dir", str(tmp_path)]  # fmt: skip
    assert module.main(argv) == 0
    result = json.loads((tmp_path / "training_step_si.json").read_text())
    (row,) = result["rows"]
    assert row["variant"] == "baseline"
    assert set(row["median_s"]) == {"float64", "float32"}
    assert all(v["cpu"] > 0 for v in row["median_s"].values())
    assert "| baseline |" in (tmp_path / "training_step_si.md").read_text()
