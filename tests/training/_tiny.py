"""Hyperparameters of the tiny (but real) MACE used by the training tests."""

TINY = {
    "num_channels": 8,
    "max_L": 0,
    "correlation": 2,
    "num_interactions": 1,
    "num_bessel": 4,
    "radial_MLP": [8],
    "MLP_irreps": "8x0e",
}
