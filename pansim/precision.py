"""Floating-point precisions by name, defined once: ``"float32"``, ``"float64"``."""

from __future__ import annotations

import torch

#: name -> torch dtype, for configs, model files and the calculator
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}
