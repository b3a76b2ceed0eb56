"""pansim_nequip.comparison checks a results checkpoint without unpickling it."""

import pathlib

import pytest
import torch

comparison = pytest.importorskip("pansim_nequip.comparison")


class Plant:
    """Unpickling this creates ``path``: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def test_a_checkpoint_with_code_in_its_pickle_is_checked_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"w": torch.ones(3)}, "extra": Plant(marker)}, path)
    assert comparison.checkpoint_problem(path) is None
    assert not marker.exists()


def test_truncated_checkpoint_is_reported(tmp_path):
    path = tmp_path / "last.ckpt"
    torch.save({"w": torch.ones(1000)}, path)
    path.write_bytes(path.read_bytes()[:-200])
    assert comparison.checkpoint_problem(path)


def test_garbage_is_reported(tmp_path):
    path = tmp_path / "last.ckpt"
    path.write_bytes(b"not a checkpoint")
    assert "BadZipFile" in comparison.checkpoint_problem(path)
