import json
import runpy
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _tiny import TINY  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def emt_files(tmp_path_factory):
    from pansim.training.synthetic import write_emt_splits

    return write_emt_splits(tmp_path_factory.mktemp("emt"), sizes=(8, 4, 4), seed=1)


@pytest.fixture
def make_config(emt_files, tmp_path):
    from pansim.training.config import TrainConfig

    def make(**overrides):
        base = dict(
            train_file=str(emt_files["train"]),
            valid_file=str(emt_files["val"]),
            test_file=str(emt_files["test"]),
            variant="pan+pgs",
            r_max=4.0,
            hyperparameters=dict(TINY),
            batch_size=3,
            max_epochs=2,
            lr=5e-3,
            checkpoint_every=2,
            out_dir=str(tmp_path / "run"),
            progress=False,
            device="cpu",
        )
        base.update(overrides)
        return TrainConfig(**base)

    return make


@pytest.fixture
def demo_runs():
    """Train the EMT demo (1 epoch, tiny MACE) with ``scripts/train_pretrained.py demo``.

    Returns a function ``(out, variants) -> the script's namespace`` (its ``main`` ships).
    """

    def run(out, variants):
        script = runpy.run_path(str(ROOT / "scripts" / "train_pretrained.py"))
        argv = ["demo", "--out", str(out), "--epochs", "1", "--sizes", "8", "4", "4",
                "--seeds", "0", "--variants", *variants,
                "--hyperparameters", "{num_channels: 8, max_L: 0, correlation: 2, "
                "num_interactions: 1}"]  # fmt: skip
        assert script["main"](argv) == 0
        return script

    return run


@pytest.fixture
def eval_shipped(monkeypatch):
    """``pansim eval NAME DATA`` against a shipped folder, as a user of its names would.

    Returns a function ``(dest, name, data, out) -> metrics.json`` (the registry of
    ``dest`` stands in for ``pansim/pretrained`` during the call).
    """
    pretrained = pytest.importorskip("pansim.pretrained")
    from pansim.cli import main

    def run(dest, name, data, out):
        monkeypatch.setattr(pretrained, "HERE", dest)
        monkeypatch.setattr(pretrained, "REGISTRY", dest / "registry.json")
        pretrained._registry.cache_clear()
        try:
            assert main(["eval", name, str(data), "--out", str(out)]) == 0
        finally:
            pretrained._registry.cache_clear()
        return json.loads((out / "metrics.json").read_text())

    return run
