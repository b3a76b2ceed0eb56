import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _tiny import TINY  # noqa: E402


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
