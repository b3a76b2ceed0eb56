"""mace-torch model files for the graft tests, written the way mace-torch writes them.

- :func:`mace_model`: a model from mace-torch's own constructors (``MACE`` or
  ``ScaleShiftMACE``), random weights, saved with ``torch.save(model, path)``;
- :func:`run_mace_train`: a model file written by ``mace_run_train`` itself, on a tiny
  EMT-labelled dataset. ``data/mace_run_train_tiny.model`` was made by it (mace-torch
  0.3.16, torch 2.13.0+cpu, e3nn 0.4.4; exactly :func:`run_mace_train`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from pansim._compat import import_mace
from pansim.model_io import default_dtype

DATA = Path(__file__).parent / "data"
#: a model file written by mace_run_train (see :func:`run_mace_train`)
MACE_RUN_TRAIN_FILE = DATA / "mace_run_train_tiny.model"

MACE_RUN_TRAIN_ARGS = [
    "--name", "tiny", "--E0s", "average", "--model", "ScaleShiftMACE",
    "--hidden_irreps", "8x0e+8x1o", "--r_max", "4.0", "--batch_size", "4",
    "--valid_batch_size", "4", "--max_num_epochs", "2", "--device", "cpu",
    "--default_dtype", "float64", "--energy_key", "REF_energy", "--forces_key", "REF_forces",
    "--stress_key", "REF_stress", "--num_interactions", "2", "--correlation", "2",
    "--max_ell", "2", "--num_radial_basis", "6", "--MLP_irreps", "8x0e",
    "--radial_MLP", "[16,16]", "--seed", "1",
]  # fmt: skip


def mace_model(
    cls_name: str = "ScaleShiftMACE",
    dtype: torch.dtype = torch.float64,
    num_interactions: int = 2,
    max_L: int = 1,
    correlation: int | list[int] = 2,
    atomic_numbers: tuple[int, ...] = (1, 8, 14),
    first: str = "RealAgnosticInteractionBlock",
    seed: int = 0,
    **options,
) -> torch.nn.Module:
    """A small mace-torch model from its own constructor, weights perturbed at random."""
    import_mace()
    from e3nn import o3
    from mace.modules import blocks, models

    hidden = "+".join(f"8x{ell}{'e' if ell % 2 == 0 else 'o'}" for ell in range(max_L + 1))
    kwargs = dict(
        r_max=4.0, num_bessel=6, num_polynomial_cutoff=5, max_ell=2,
        interaction_cls=blocks.RealAgnosticResidualInteractionBlock,
        interaction_cls_first=getattr(blocks, first), num_interactions=num_interactions,
        num_elements=len(atomic_numbers), hidden_irreps=o3.Irreps(hidden),
        MLP_irreps=o3.Irreps("8x0e"), atomic_energies=np.linspace(-3, -1, len(atomic_numbers)),
        avg_num_neighbors=6.0, atomic_numbers=list(atomic_numbers), correlation=correlation,
        gate=torch.nn.functional.silu, radial_MLP=[16, 16], **options,
    )  # fmt: skip
    if cls_name == "ScaleShiftMACE":
        kwargs.update(atomic_inter_scale=1.7, atomic_inter_shift=-0.3)
    with torch.random.fork_rng(devices=[]), default_dtype(dtype):
        torch.manual_seed(seed)
        model = getattr(models, cls_name)(**kwargs)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
    return model


def save_mace_model(model: torch.nn.Module, path: Path) -> Path:
    """``torch.save(model, path)``, as mace_run_train saves its models."""
    torch.save(model, path)
    return path


def run_mace_train(folder: Path) -> Path:
    """Train a tiny MACE for 2 epochs with ``mace_run_train`` on 8 EMT structures."""
    from pansim.training.synthetic import write_emt_splits

    files = write_emt_splits(folder, sizes=(8, 4, 4), seed=3)
    command = [
        str(Path(sys.executable).with_name("mace_run_train")),
        "--train_file", str(files["train"]), "--valid_file", str(files["val"]),
        "--work_dir", str(folder), *MACE_RUN_TRAIN_ARGS,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / "tiny.model"
