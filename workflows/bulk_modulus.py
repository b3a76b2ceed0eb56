"""Local bulk modulus B(V) of a scanned equation of state, and its physical checks.

A Birch-Murnaghan fit can give a good B0 from an unphysical E(V): for the
``si`` model the fitted B0 was 2 % from DFT while the local modulus
``B(V) = -V dP/dV = V d2E/dV2`` was 78 GPa at V0 and rose on both sides, with
B0' = 1.45. These functions compute B(V) from the scanned points and flag

- ``B0'`` outside :data:`B0_PRIME_RANGE` (2..8): the pressure derivative of the
  bulk modulus of solids lies between about 3.5 and 6.5 (elements, ionic and
  covalent crystals); values below 2 or above 8 come from an unphysical E(V)
  curve or a fit that does not describe it;
- B(V) not decreasing with V within +-6 % of V0 (:data:`MONOTONE_WINDOW`): a
  stable solid stiffens when compressed (dB/dP = B0' > 0); a rise with V is
  unphysical. A rise above the lowest B at any smaller volume counts once it exceeds
  :data:`MONOTONE_TOLERANCE` of B(V0) (numerical noise), so a slow, sustained rise
  made of small steps fails as one rise.

For validation rows (``B(V) monotone``, ``B(V0) within 10 % of DFT B0``) see
:func:`bulk_modulus_checks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import units

#: physical range of B0' (dimensionless), see the module notes
B0_PRIME_RANGE = (2.0, 8.0)
#: half-width of the window around V0 where B(V) must decrease, as a fraction of V0
MONOTONE_WINDOW = 0.06
#: rises of B(V) smaller than this fraction of B(V0) are treated as numerical noise.
#: 0.2 %: a float64 scan of a smooth model is smooth to far below it (float32 stress
#: noise moves B by about 0.01 GPa); the former 1 % let the 100-epoch ``lif`` pass with
#: B(V) rising by 0.5 GPa (0.7 %) from 1.036 to 1.060 V0, the unphysical curvature the
#: science issue names (docs/science.md section 6).
MONOTONE_TOLERANCE = 0.002


def local_bulk_modulus(
    volumes: Sequence[float],
    energies: Sequence[float] | None = None,
    pressures: Sequence[float] | None = None,
) -> np.ndarray:
    """B(V) in GPa at each scanned volume.

    Parameters
    ----------
    volumes : sequence of float
        Volumes (A^3, per atom or per cell: the same unit as ``energies``).
    energies : sequence of float, optional
        Energies (eV) at ``volumes``: ``B = V d2E/dV2`` by second-order finite
        differences (needs at least 3 points).
    pressures : sequence of float, optional
        Pressures (eV/A^3, positive = compressed) at ``volumes``, preferred when
        given: ``B = -V dP/dV`` needs one derivative less.

    Returns
    -------
    np.ndarray
        B(V) in GPa, in the order of ``volumes``.
    """
    v = np.asarray(volumes, dtype=float)
    if len(v) < 3:
        raise ValueError(f"B(V) needs at least 3 volumes, got {len(v)}")
    order = np.argsort(v)
    vs = v[order]
    if pressures is not None:
        b = -vs * np.gradient(np.asarray(pressures, dtype=float)[order], vs, edge_order=2)
    elif energies is not None:
        e = np.asarray(energies, dtype=float)[order]
        b = vs * np.gradient(np.gradient(e, vs, edge_order=2), vs, edge_order=2)
    else:
        raise ValueError("give energies or pressures")
    out = np.empty_like(b)
    out[order] = b / units.GPa
    return out


def is_monotone_decreasing(
    volumes: Sequence[float],
    moduli: Sequence[float],
    v0: float,
    window: float = MONOTONE_WINDOW,
    tolerance: float = MONOTONE_TOLERANCE,
) -> bool:
    """Whether B(V) decreases with V for |V/V0 - 1| <= ``window`` (rises within noise allowed).

    Every B must be at most the lowest B at any smaller volume plus ``tolerance`` * B(V0):
    the rise is measured from the running minimum, not step by step.
    """
    v, b = np.asarray(volumes, dtype=float), np.asarray(moduli, dtype=float)
    keep = np.abs(v / v0 - 1.0) <= window + 1e-9
    order = np.argsort(v[keep])
    bs = b[keep][order]
    if len(bs) < 2:
        return True
    scale = tolerance * abs(np.interp(v0, v[keep][order], bs))
    running_min = np.minimum.accumulate(bs)
    return bool(np.all(bs[1:] - running_min[:-1] <= scale))


def bulk_modulus_checks(
    volumes: Sequence[float],
    moduli: Sequence[float],
    v0: float,
    b0_prime: float,
    reference_b0: float | None = None,
    rtol: float = 0.10,
) -> dict[str, Any]:
    """B(V0), the physical checks and their warnings, ready for a result or a validation row.

    Parameters
    ----------
    volumes, moduli : sequence of float
        The scan and its B(V) (GPa), from :func:`local_bulk_modulus`.
    v0, b0_prime : float
        Fitted equilibrium volume and B0'.
    reference_b0 : float, optional
        A reference (DFT) B0 in GPa: adds ``B_V0_within_rtol``.
    rtol : float
        Relative tolerance of that comparison.

    Returns
    -------
    dict
        ``B_V0`` (GPa, interpolated), ``monotone`` (bool), ``B0_prime_physical``
        (bool), ``B0_prime_range``, optionally ``B_V0_within_rtol`` and
        ``reference_B0``, and ``warnings`` (list of str).
    """
    v, b = np.asarray(volumes, dtype=float), np.asarray(moduli, dtype=float)
    order = np.argsort(v)
    b_v0 = float(np.interp(v0, v[order], b[order]))
    monotone = is_monotone_decreasing(v, b, v0)
    lo, hi = B0_PRIME_RANGE
    physical = bool(lo <= b0_prime <= hi)
    out: dict[str, Any] = {
        "B_V0": b_v0,
        "monotone": monotone,
        "B0_prime_physical": physical,
        "B0_prime_range": [lo, hi],
        "warnings": [],
    }
    if not physical:
        out["warnings"].append(
            f"B0' = {b0_prime:.2f} is outside the physical range {lo:g}..{hi:g}: "
            "the E(V) curve or its fit is not physical"
        )
    if not monotone:
        window = f"+-{MONOTONE_WINDOW:.0%}"
        out["warnings"].append(
            f"local bulk modulus B(V) does not decrease with V within {window} of V0 "
            f"(B(V0) = {b_v0:.1f} GPa; min {b.min():.1f}, max {b.max():.1f} GPa): unphysical E(V)"
        )
    if reference_b0 is not None:
        out["reference_B0"] = float(reference_b0)
        out["B_V0_within_rtol"] = bool(abs(b_v0 - reference_b0) <= rtol * abs(reference_b0))
    return out
