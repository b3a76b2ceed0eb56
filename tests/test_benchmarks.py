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
    args = run_all.PRESETS["smoke"][name].split() + ["--out-dir", str(out_dir)]
    return args + ["--hyperparameters", json.dumps(run_all.TINY)]


@pytest.mark.parametrize("name", ["overhead", "calculator", "scaling", "batched"])
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


def _calculator(result):
    (size,) = result["sizes"]
    assert max(size["agreement"].values()) < 1e-10  # same weights in pansim and mace (float64)
    assert {"single_point", "nve", "stages", "neighbour_lists"} <= set(size)


def _scaling(result):
    assert [r["atoms"] for r in result["rows"]] == [8]


def _batched(result):
    assert result["all_within_tolerance"]  # batched == serial to 1e-10 in float64


CHECKS = {"overhead": _overhead, "calculator": _calculator, "scaling": _scaling,
          "batched": _batched}  # fmt: skip


def test_run_all_writes_readme(benchmarks, tmp_path):
    argv = ["--preset", "smoke", "--only", "scaling", "--out-dir", str(tmp_path)]
    results = benchmarks.main(argv)
    text = (tmp_path / "README.md").read_text()
    assert set(results) == {"scaling"}
    for needle in ("smoke", "machine:", "torch threads", "mace-torch", "e3nn", "## scaling"):
        assert needle in text
    (tmp_path / "README.md").unlink()
    benchmarks.main(["--readme-only", "--only", "scaling", "--out-dir", str(tmp_path)])
    assert "## scaling" in (tmp_path / "README.md").read_text()


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
    monkeypatch.setattr(scaling, "available_mb", lambda: 2000.0)  # 1 MiB/atom: ~1200 atoms fit
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
