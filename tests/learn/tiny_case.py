"""The tiny active-learning case of the tests: EMT labels, 4-atom Cu cells, tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write

TINY = {
    "num_channels": 8,
    "max_L": 0,
    "max_ell": 1,
    "correlation": 2,
    "num_interactions": 1,
    "num_bessel": 4,
    "radial_MLP": [8],
    "MLP_irreps": "4x0e",
}


def labelled_cells(n: int, seed: int) -> list:
    """``n`` rattled, strained 4-atom Cu cells with EMT labels under REF_* keys."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        a = bulk("Cu", "fcc", 3.61, cubic=True)
        a.set_cell(a.cell * rng.uniform(0.95, 1.03), scale_atoms=True)
        a.positions += rng.normal(0, 0.08, a.positions.shape)
        a.calc = EMT()
        a.info["REF_energy"] = a.get_potential_energy()
        a.arrays["REF_forces"] = a.get_forces()
        a.info["REF_stress"] = a.get_stress(voigt=False)
        a.calc = None
        frames.append(a)
    return frames


def make_case(root: Path, threshold: float = 0.05, **overrides) -> Path:
    """Write models, data and ``learn.yaml`` of the tiny case under ``root``; returns the config.

    Paths in the config are relative to ``root`` (run from there).
    """
    import torch

    from pansim.backbones import build_model
    from pansim.model_io import default_dtype, save_model

    root.mkdir(parents=True, exist_ok=True)
    write(root / "val.extxyz", labelled_cells(4, seed=1))
    write(root / "train.extxyz", labelled_cells(6, seed=2))
    models = []
    for s in (0, 1):
        with default_dtype(torch.float64):
            m = build_model(
                variant="baseline", elements=["Cu"], r_max=4.0, seed=s,
                atomic_energies=[-0.1], avg_num_neighbors=12.0, **TINY,
            )  # fmt: skip
        save_model(m, root / f"member{s}.safetensors")
        models.append(f"member{s}.safetensors")
    train_cfg = {
        "variant": "baseline",
        "r_max": 4.0,
        "hyperparameters": TINY,
        "batch_size": 4,
        "lr": 0.005,
        "scheduler": "none",
        "ema_decay": None,
        "checkpoint_every": 1,
        "train_file": "unused",
        "valid_file": "unused",
    }
    (root / "train.yaml").write_text(yaml.safe_dump(train_cfg))
    cfg = {
        "system": "cu-emt",
        "labeller": "emt",
        "committee": models,
        "work_dir": "work",
        "validation_file": "val.extxyz",
        "explore": {
            "bulk": {"name": "Cu", "crystalstructure": "fcc", "a": 3.61, "cubic": True},
            "md": [{"temperature_K": 1200, "steps": 12, "sample_every": 4}],
            "compress": {"volumes": [0.8, 0.9], "per_volume": 1},
            "contact": {"n": 2},
            "vacancy": {"n": 1},
        },
        "select": {"threshold": threshold, "max_per_round": 2},
        "stop": {"max_rounds": 2, "label_budget": 20},
        "retrain": {
            "mode": "warm",
            "config": "train.yaml",
            "max_epochs": 2,
            "train_file": "train.extxyz",
        },
    }
    for key, value in overrides.items():
        cfg[key] = value
    path = root / "learn.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path
