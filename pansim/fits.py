"""The fits of the property analyses, shared by the DFT reference builders and the workflows.

One definition each, so that a DFT value and a model value of the same property
come out of the same fit:

- :func:`birch_murnaghan`, :func:`fit_birch_murnaghan`: the equation of state
  (``workflows.eos`` and :mod:`pansim.data.reference`);
- :func:`fit_columns`: elastic constants as least-squares stress-strain slopes
  (``workflows.elastic`` and :mod:`pansim.data.reference`).
"""

from __future__ import annotations

import numpy as np


def birch_murnaghan(v: np.ndarray, e0: float, v0: float, b0: float, bp: float) -> np.ndarray:
    """Third-order Birch-Murnaghan energy E(V); ``b0`` in energy/volume units of ``v``, ``e0``."""
    eta = (v0 / v) ** (2.0 / 3.0)
    return e0 + 9.0 * v0 * b0 / 16.0 * (
        (eta - 1.0) ** 3 * bp + (eta - 1.0) ** 2 * (6.0 - 4.0 * eta)
    )


def fit_birch_murnaghan(volumes: np.ndarray, energies: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares Birch-Murnaghan fit.

    Returns ``(params, rms)`` with ``params = (E0, V0, B0 [eV/A^3], B0')`` and the
    RMS residual in the energy unit. The start point comes from a parabola in V.
    """
    from scipy.optimize import curve_fit

    lo, hi = 0.5 * volumes.min(), 2.0 * volumes.max()
    a, b, c = np.polyfit(volumes, energies, 2)
    v0 = float(np.clip(-b / (2 * a) if a > 0 else volumes[np.argmin(energies)], lo, hi))
    start = (a * v0**2 + b * v0 + c, v0, max(2 * a * v0, 1e-4), 4.0)
    bounds = ([-np.inf, lo, -np.inf, -np.inf], [np.inf, hi, np.inf, np.inf])
    params, _ = curve_fit(birch_murnaghan, volumes, energies, p0=start, bounds=bounds, maxfev=20000)
    rms = float(np.sqrt(np.mean((birch_murnaghan(volumes, *params) - energies) ** 2)))
    return params, rms


def fit_columns(strains: np.ndarray, stresses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit C from Voigt stresses ``[6, n_strain, 6]`` (strained component first) at ``strains``.

    Returns ``(C, C_std_err)``: per (i, j) the least-squares slope of stress_i
    against strain_j, and its standard error (zero with two strains).
    """
    x = np.asarray(strains, dtype=float)
    design = np.stack([x, np.ones_like(x)], axis=1)
    c = np.zeros((6, 6))
    err = np.zeros((6, 6))
    dof = max(len(x) - 2, 1)
    for j in range(6):
        coeffs, *_ = np.linalg.lstsq(design, stresses[j], rcond=None)
        resid = stresses[j] - design @ coeffs
        c[:, j] = coeffs[0]
        err[:, j] = np.sqrt((resid**2).sum(axis=0) / dof / ((x - x.mean()) ** 2).sum())
    return c, err
