"""Crystal frames: the rotation to spglib's standardized conventional frame, tensor rotation.

Elastic constants are a 4th-rank tensor: their Voigt matrix depends on how the
crystal is oriented in Cartesian space. A primitive fcc cell read from a CIF
(ASE puts ``a`` along x) and the conventional cubic cell give different
matrices for the same crystal. :func:`standard_frame` finds the rotation ``R``
(``x_standard = R @ x_input``) that spglib's standardisation applies, and
:func:`rotate_stiffness` turns a Voigt stiffness into that frame, so results do
not depend on how the input was written.

spglib's standardized conventional frame is the IEEE 176 frame for cubic,
tetragonal, orthorhombic and hexagonal crystals (a along x, c along z); for
trigonal (rhombohedral setting), monoclinic and triclinic crystals it is
spglib's convention (``a`` along x, ``b`` in the xy plane), which IEEE 176 does
not fix uniquely.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

#: Voigt index of each (i, j) pair
_VOIGT = np.array([[0, 5, 4], [5, 1, 3], [4, 3, 2]])


def standard_frame(atoms: Atoms, symprec: float = 1e-3) -> dict[str, Any]:
    """Space group and the rotation of ``atoms`` into spglib's standardized conventional frame.

    Returns
    -------
    dict
        ``rotation`` (3x3 list, ``x_standard = R @ x_input``), ``spacegroup``
        (international symbol and number), ``crystal_system`` and ``symprec``.
        Without a dataset (spglib finds no symmetry) the rotation is the identity.
    """
    import spglib

    cell = (atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers)
    data = spglib.get_symmetry_dataset(cell, symprec=symprec)
    if data is None:
        return {"rotation": np.eye(3).tolist(), "spacegroup": None, "crystal_system": None}
    number = int(data.number)
    return {
        "rotation": np.asarray(data.std_rotation_matrix, dtype=float).tolist(),
        "spacegroup": f"{data.international} ({number})",
        "crystal_system": crystal_system(number),
        "symprec": symprec,
    }


def crystal_system(number: int) -> str:
    """Crystal system of space group ``number``."""
    for top, name in (
        (2, "triclinic"),
        (15, "monoclinic"),
        (74, "orthorhombic"),
        (142, "tetragonal"),
        (167, "trigonal"),
        (194, "hexagonal"),
    ):
        if number <= top:
            return name
    return "cubic"


def voigt_to_tensor(c: np.ndarray) -> np.ndarray:
    """6x6 Voigt stiffness -> 3x3x3x3 tensor."""
    return np.asarray(c, dtype=float)[_VOIGT[:, :, None, None], _VOIGT[None, None, :, :]]


def tensor_to_voigt(t: np.ndarray) -> np.ndarray:
    """3x3x3x3 stiffness tensor -> 6x6 Voigt matrix."""
    pairs = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    return np.array([[t[i, j, k, m] for k, m in pairs] for i, j in pairs])


def rotate_stiffness(c: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Voigt stiffness ``c`` of a crystal rotated by ``rotation`` (``x' = R x``)."""
    r = np.asarray(rotation, dtype=float)
    t = np.einsum("ip,jq,kr,ls,pqrs->ijkl", r, r, r, r, voigt_to_tensor(c))
    return tensor_to_voigt(t)


def rotate_stiffness_error(err: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Standard errors of :func:`rotate_stiffness` (independent errors, added in quadrature)."""
    r2 = np.asarray(rotation, dtype=float) ** 2
    var = voigt_to_tensor(np.asarray(err, dtype=float) ** 2)
    return np.sqrt(tensor_to_voigt(np.einsum("ip,jq,kr,ls,pqrs->ijkl", r2, r2, r2, r2, var)))
