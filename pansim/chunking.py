"""Exact spatial decomposition: evaluate a large structure chunk by chunk in bounded memory.

Scheme (owned region + halo, gradients summed back onto the original atoms)
---------------------------------------------------------------------------
A model with ``n`` interactions of cutoff ``r_max`` gives every atom a site
energy ``E_j`` that depends only on the atoms within ``n * r_max`` of it. The
structure is cut into a grid of regions (fractional coordinates of the cell;
along open directions, of the atoms' extent); each atom is *owned* by one region.
A chunk is a non-periodic cluster of explicit Cartesian images: the owned atoms
plus every image within ``n * r_max`` of the region (a box grown by that depth
across each face, so a superset of the sphere halo). The owned site energies
of a chunk are then exact, and so is the gradient of their sum with respect to
every position of the chunk. Summed over chunks onto the original atoms (images
included), those gradients give the exact forces, ``F_k = -sum_j dE_j/dr_k``;
the virial ``sum_k r_k (x) dE/dr_k`` of each chunk's explicit images gives the
exact stress. This is the "reverse summation of ghost forces" scheme, which one
process can always do: the halo is ``n * r_max`` deep (not ``2 * n * r_max``).

Edges whose receiving atom lies deeper than ``(n - 1) * r_max`` in the halo are
dropped: those atoms only send messages to the first interaction (their own
features never reach an owned atom), so their incoming edges are never needed.

Redundant work: with a cubic region of side ``L``, an atom count
``((L + 2 n r_max) / L)^3`` times the owned atoms, of which
``((L + 2 (n - 1) r_max) / L)^3`` receive edges (the edge work, which dominates).
For Si with ``r_max = 5`` A and ``n = 2`` and chunks of 8,000 atoms:
about 4.1 times the atoms and about 2.2 times the edge work of the whole cell.

Every result matches the whole-cell evaluation to float round-off (energies,
site energies, forces, stress).

Automatic chunk size (``max_atoms_per_chunk="auto"``, :func:`auto_plan`)
-----------------------------------------------------------------------
``N = floor(AUTO_MEMORY_FRACTION * available / per_atom)`` atoms, where
``available`` is the memory available now (``torch.cuda.mem_get_info`` on a CUDA
device, else psutil or ``MemAvailable`` of /proc/meminfo) and ``per_atom`` the
estimated peak memory of a model call per atom: :data:`AUTO_PEAK_FACTOR` times
the bytes the autograd graph saves, measured once per model, dtype and device on
a small probe cluster (:func:`calibrate`, per atom and per edge) and applied to
the structure's mean number of neighbours within ``r_max``. A structure of at
most ``N`` atoms is evaluated whole; a larger one in chunks of at most ``N``
atoms, never fewer than the halo needs (where the memory allows less, the
smallest workable chunk is used with a warning).
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms

from pansim.domain import DomainTally
from pansim.graph import (
    MIN_DISTANCE,
    InvalidStructureError,
    _padded_box,
    check_cell_density,
    neighbor_list,
    validate_atoms,
)

#: the grid search tries at most this many regions along each direction
MAX_DIVISIONS = 48
#: auto chunk size: peak memory of a model call (energy + forces) over the bytes its
#: autograd graph saves; measured 2.0-2.9 for the shipped models (Si, 64-1000 atoms,
#: float32 and float64, whole process), so 3 covers the backward pass's transients
AUTO_PEAK_FACTOR = 3.0
#: auto chunk size: share of the memory available now that one chunk may use
AUTO_MEMORY_FRACTION = 0.5


class ChunkSizeError(ValueError):
    """``max_atoms_per_chunk`` too small for the halo this model and structure need."""


@dataclasses.dataclass(frozen=True)
class Frame:
    """Where the atoms sit: fractional coordinates in a (padded) box, and the grid range."""

    box: np.ndarray  # [3, 3] cell rows; open directions: long orthogonal vectors
    pbc: np.ndarray  # [3] bool
    frac: np.ndarray  # [n, 3] fractional coordinates, wrapped into [0, 1) along periodic axes
    wrap: np.ndarray  # [n, 3] integer shift applied by the wrapping
    lo: np.ndarray  # [3] grid start per axis (fractional)
    hi: np.ndarray  # [3] grid end per axis (fractional)
    depth: np.ndarray  # [3] one Angstrom of halo in fractional units, per axis


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One cluster of explicit images: owned atoms plus halo."""

    index: np.ndarray  # [m] original atom of every chunk atom
    positions: np.ndarray  # [m, 3] Cartesian positions of the images
    owned: np.ndarray  # [m] bool: atoms this chunk's site energies are kept for
    receives: np.ndarray  # [m] bool: atoms whose incoming edges are needed


def halo_depth(model: torch.nn.Module) -> float:
    """Receptive field ``n_interactions * r_max`` of a site energy (Angstrom)."""
    n = getattr(model, "num_interactions", None)
    if n is None:
        raise TypeError(
            "chunked evaluation needs the model's number of interactions "
            "(attribute num_interactions); this model does not have it"
        )
    return int(n) * float(model.r_max)


def make_frame(atoms: Atoms, r_max: float) -> Frame:
    """The fractional frame of ``atoms`` (periodic axes wrapped, open axes padded)."""
    pbc = np.asarray(atoms.pbc, dtype=bool)
    positions = np.asarray(atoms.positions, dtype=np.float64)
    box = _padded_box(np.asarray(atoms.cell, dtype=np.float64), pbc, positions, r_max)
    inverse = np.linalg.inv(box)
    frac = positions @ inverse
    wrap = np.where(pbc, np.floor(frac), 0.0)
    frac = frac - wrap
    lo = np.where(pbc, 0.0, frac.min(axis=0))
    hi = np.where(pbc, 1.0, frac.max(axis=0))
    depth = np.linalg.norm(inverse, axis=0)  # |b_i|: fractional change per Angstrom across
    return Frame(box, pbc, frac, wrap.astype(np.int64), lo, hi, depth)


# -- choosing the grid --------------------------------------------------------------------
def _coverage(frame: Frame, grid: np.ndarray, halo: float) -> np.ndarray:
    """Estimated chunk size over atom count for grids ``[k, 3]`` (uniform density)."""
    span = frame.hi - frame.lo
    extent = span / grid + 2.0 * halo * frame.depth
    ratio = np.where(frame.pbc, extent, np.minimum(extent / np.maximum(span, 1e-300), 1.0))
    return np.prod(ratio, axis=-1)


def _candidate_grids(frame: Frame, halo: float) -> np.ndarray:
    """Every grid up to :data:`MAX_DIVISIONS` per axis (one division where nothing to cut)."""
    span = frame.hi - frame.lo
    widest = np.maximum(1, np.minimum(MAX_DIVISIONS, np.floor(4 * span / (halo * frame.depth))))
    axes = [np.arange(1, int(w) + 1) for w in widest]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def choose_grid(frame: Frame, n_atoms: int, max_atoms: int, halo: float) -> np.ndarray | None:
    """The grid with the least total work whose chunks hold at most ``max_atoms`` atoms.

    Returns None where chunking cannot save memory (the smallest possible chunk
    holds as many atoms as the whole structure: the cell is too small for the halo).

    Raises
    ------
    ChunkSizeError
        ``max_atoms`` is below what the smallest chunk of this structure holds.
    """
    smallest = n_atoms * float(_coverage(frame, np.full((1, 3), np.inf), halo)[0])
    if smallest >= n_atoms:
        return None
    grids = _candidate_grids(frame, halo)
    sizes = n_atoms * _coverage(frame, grids, halo)
    target = float(max_atoms)
    for _ in range(12):
        fits = sizes <= target
        if not fits.any():
            break
        work = np.where(fits, sizes * grids.prod(axis=1), np.inf)
        grid = grids[int(np.argmin(work))]
        largest = max(counts(frame, grid, halo).max(), 1)
        if largest <= max_atoms:
            return grid
        target *= 0.95 * max_atoms / largest  # denser than average somewhere: shrink
    raise ChunkSizeError(
        f"max_atoms_per_chunk={max_atoms} is smaller than the halo needs: a chunk is an "
        f"owned region plus every atom within n_interactions * r_max = {halo:g} A of it, "
        f"and the smallest chunk of this structure holds about {smallest:.0f} atoms; "
        f"use at least {int(4 * smallest)} (larger chunks repeat less work)"
    )


# -- building chunks ----------------------------------------------------------------------
def _bounds(frame: Frame, grid: np.ndarray, cell: Sequence[int], halo: float):
    """Fractional [lo, hi] per axis of region ``cell`` of ``grid``, grown by ``halo`` A."""
    width = (frame.hi - frame.lo) / grid
    start = frame.lo + np.asarray(cell) * width
    pad = halo * frame.depth * (1 + 1e-9) + 1e-12
    return start - pad, start + width + pad


def _image_counts(frame: Frame, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """[n, 3] number of images of every atom inside [lo, hi] along each axis."""
    f = frame.frac
    periodic = np.floor(hi - f) - np.ceil(lo - f) + 1
    inside = ((f >= lo) & (f <= hi)).astype(np.float64)
    return np.maximum(np.where(frame.pbc, periodic, inside), 0)


def counts(frame: Frame, grid: np.ndarray, halo: float) -> np.ndarray:
    """Exact atom count (images included) of every chunk of ``grid``, shape ``grid``."""
    per_axis = []
    for axis in range(3):
        rows = []
        for k in range(int(grid[axis])):
            cell = np.zeros(3, dtype=int)
            cell[axis] = k
            lo, hi = _bounds(frame, grid, cell, halo)
            rows.append(_image_counts(frame, lo, hi)[:, axis])
        per_axis.append(np.stack(rows))
    return np.einsum("ia,ja,ka->ijk", *per_axis)


def _owner(frame: Frame, grid: np.ndarray) -> np.ndarray:
    """[n, 3] region index of every atom."""
    width = (frame.hi - frame.lo) / grid
    scaled = (frame.frac - frame.lo) / np.where(width > 0, width, 1.0)
    return np.clip(np.floor(scaled), 0, grid - 1).astype(np.int64)


def build_chunk(
    frame: Frame, positions: np.ndarray, grid: np.ndarray, cell: Sequence[int],
    owner: np.ndarray, halo: float, inner: float,
) -> Chunk:  # fmt: skip
    """The explicit images of region ``cell`` and its halo (``inner``: receiving depth)."""
    lo, hi = _bounds(frame, grid, cell, halo)
    present = np.all(_image_counts(frame, lo, hi) > 0, axis=1)
    atoms = np.flatnonzero(present)
    f = frame.frac[atoms]
    first = np.where(frame.pbc, np.ceil(lo - f).min(axis=0), 0).astype(int)
    last = np.where(frame.pbc, np.floor(hi - f).max(axis=0), 0).astype(int)
    in_lo, in_hi = _bounds(frame, grid, cell, inner)
    index, shift, receives = [], [], []
    for s in itertools.product(*(range(a, b + 1) for a, b in zip(first, last))):  # noqa: B905
        g = f + np.asarray(s)
        keep = np.all((g >= lo) & (g <= hi), axis=1)
        index.append(atoms[keep])
        shift.append(np.broadcast_to(np.asarray(s), (int(keep.sum()), 3)))
        receives.append(np.all((g[keep] >= in_lo) & (g[keep] <= in_hi), axis=1))
    index = np.concatenate(index)
    shift = np.concatenate(shift) - frame.wrap[index]
    owned = np.all(shift + frame.wrap[index] == 0, axis=1) & np.all(owner[index] == cell, axis=1)
    images = positions[index] + shift @ frame.box
    return Chunk(index, images, owned, np.concatenate(receives) | owned)


def iter_chunks(atoms: Atoms, grid: np.ndarray, halo: float, r_max: float) -> Iterator[Chunk]:
    """Every non-empty chunk of ``grid`` (regions without owned atoms are skipped)."""
    frame = make_frame(atoms, r_max)
    owner = _owner(frame, grid)
    positions = np.asarray(atoms.positions, dtype=np.float64)
    occupied = {tuple(int(x) for x in row) for row in np.unique(owner, axis=0)}
    inner = max(halo - r_max, 0.0)
    for cell in itertools.product(*(range(int(g)) for g in grid)):
        if cell in occupied:
            yield build_chunk(frame, positions, grid, cell, owner, halo, inner)


# -- automatic chunk size -----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MemoryModel:
    """Bytes the autograd graph of a model call saves, per atom and per edge (one model)."""

    node_bytes: float
    edge_bytes: float

    def per_atom(self, edges_per_atom: float) -> float:
        """Estimated peak bytes of a model call per atom (:data:`AUTO_PEAK_FACTOR` included)."""
        return AUTO_PEAK_FACTOR * (self.node_bytes + self.edge_bytes * edges_per_atom)


def calibrate(
    model: torch.nn.Module, dtype: torch.dtype, device: torch.device | str
) -> MemoryModel:
    """:class:`MemoryModel` of ``model``: one energy + forces call on a probe cluster.

    The probe is a 5 x 5 x 5 simple cubic cluster of spacing ``r_max / 2.5`` with the
    model's elements in turn. Every tensor the autograd graph saves (parameters
    excepted, shared storage counted once) is booked per edge when its first
    dimension is the edge count, else per atom.
    """
    r_max = float(model.r_max)
    atomic_numbers = [int(z) for z in model.atomic_numbers]
    grid = np.stack(np.meshgrid(*[np.arange(5)] * 3, indexing="ij"), -1).reshape(-1, 3)
    numbers = np.resize(atomic_numbers, len(grid))
    chunk = Chunk(
        np.arange(len(grid)), grid * r_max / 2.5, np.ones(len(grid), bool), np.ones(len(grid), bool)
    )
    graph = chunk_graph(chunk, numbers, atomic_numbers, r_max)
    n_nodes, n_edges = len(grid), graph["edge_index"].shape[1]
    fixed = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    booked: dict[int, tuple[bool, int]] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        pointer = storage.data_ptr()
        if pointer not in fixed and pointer not in booked:
            on_edges = tensor.dim() > 0 and tensor.shape[0] == n_edges
            booked[pointer] = (on_edges, storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        evaluate_chunk(model, graph, chunk.owned, dtype, torch.device(device), True)
    edge_bytes = sum(b for on_edges, b in booked.values() if on_edges)
    node_bytes = sum(b for on_edges, b in booked.values() if not on_edges)
    return MemoryModel(node_bytes / n_nodes, edge_bytes / max(n_edges, 1))


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes available now: free CUDA memory, else psutil or /proc/meminfo; None if unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        import psutil
    except ImportError:
        pass
    else:
        return int(psutil.virtual_memory().available)
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def edges_per_atom(atoms: Atoms, r_max: float) -> float:
    """Mean number of neighbours within ``r_max`` (periodic images included)."""
    import vesin

    from pansim.graph import _search_box

    pbc = np.asarray(atoms.pbc, dtype=bool)
    positions = np.asarray(atoms.positions, dtype=np.float64)
    box = _padded_box(np.asarray(atoms.cell, dtype=np.float64), pbc, positions, r_max)
    search, _ = _search_box(box, pbc)
    (i,) = vesin.NeighborList(cutoff=float(r_max), full_list=True).compute(
        positions, search, pbc.tolist(), quantities="i"
    )
    return len(i) / len(atoms)


def auto_chunk_size(atoms: Atoms, model: torch.nn.Module, memory: MemoryModel,
                    device: torch.device | str = "cpu") -> int:  # fmt: skip
    """The chunk size the memory allows: ``AUTO_MEMORY_FRACTION * available / per_atom``.

    Raises
    ------
    RuntimeError
        The available memory of ``device`` cannot be read.
    """
    available = available_memory(device)
    if available is None:
        raise RuntimeError(
            f"max_atoms_per_chunk='auto' cannot read the memory available on {device}; "
            "give max_atoms_per_chunk as a number"
        )
    per_atom = memory.per_atom(edges_per_atom(atoms, float(model.r_max)))
    return max(int(AUTO_MEMORY_FRACTION * available // per_atom), 1)


def auto_plan(atoms: Atoms, model: torch.nn.Module, memory: MemoryModel,
              device: torch.device | str = "cpu") -> tuple[int, np.ndarray | None]:  # fmt: skip
    """``(chunk size, grid)`` of ``max_atoms_per_chunk="auto"`` (grid None: whole cell).

    The size is :func:`auto_chunk_size`, raised to the smallest chunk the halo
    allows where the memory allows less (with a ``UserWarning`` saying so).
    """
    validate_atoms(atoms, [int(z) for z in model.atomic_numbers])
    check_cell_density(atoms, float(model.r_max))
    size = auto_chunk_size(atoms, model, memory, device)
    if len(atoms) <= size:
        return size, None
    allowed = size
    while True:  # plan() warns where the cell is too small for the halo (whole cell)
        try:
            grid = plan(atoms, model, size)
        except ChunkSizeError:
            size = max(size + 1, int(size * 1.25), _smallest_chunk(atoms, model))
            continue
        break
    if grid is not None and size > allowed:
        warnings.warn(
            f"max_atoms_per_chunk='auto': the memory available allows chunks of {allowed} "
            f"atoms, but the halo of n_interactions * r_max = {halo_depth(model):g} A needs at "
            f"least {size} for this structure; using {size} (the call may run out of memory)",
            stacklevel=3,
        )
    return size, grid


def _smallest_chunk(atoms: Atoms, model: torch.nn.Module) -> int:
    """Exact size of the largest chunk of the finest grid (estimate of the least that works)."""
    halo = halo_depth(model)
    frame = make_frame(atoms, float(model.r_max))
    grids = _candidate_grids(frame, halo)
    finest = grids[int(np.argmin(_coverage(frame, grids, halo)))]
    return int(counts(frame, finest, halo).max())


# -- evaluating ---------------------------------------------------------------------------
def chunk_graph(
    chunk: Chunk, numbers: np.ndarray, atomic_numbers: Sequence[int], r_max: float
) -> dict[str, np.ndarray]:
    """The chunk as one open-boundary graph (float64 numpy), positions centred.

    Edges into atoms that do not receive are dropped (see the module notes).
    """
    centre = 0.5 * (chunk.positions.min(axis=0) + chunk.positions.max(axis=0))
    cluster = Atoms(numbers=numbers[chunk.index], positions=chunk.positions - centre)
    edge_index, shifts, unit_shifts = neighbor_list(cluster, r_max)
    _check_overlap(cluster.positions, edge_index, chunk.index)
    keep = chunk.receives[edge_index[1]]
    z_index = {int(z): k for k, z in enumerate(atomic_numbers)}
    node_attrs = np.zeros((len(cluster), len(atomic_numbers)))
    node_attrs[np.arange(len(cluster)), [z_index[int(z)] for z in cluster.numbers]] = 1.0
    return {
        "positions": cluster.positions,
        "node_attrs": node_attrs,
        "edge_index": edge_index[:, keep],
        "shifts": shifts[keep],
        "unit_shifts": unit_shifts[keep].astype(np.float64),
        "cell": np.zeros((3, 3)),
    }


def _check_overlap(positions: np.ndarray, edge_index: np.ndarray, index: np.ndarray) -> None:
    """:class:`InvalidStructureError` naming the original atoms of overlapping images."""
    if not edge_index.shape[1]:
        return
    dist = np.linalg.norm(positions[edge_index[1]] - positions[edge_index[0]], axis=1)
    k = int(np.argmin(dist))
    if dist[k] < MIN_DISTANCE:
        a, b = int(index[edge_index[0, k]]), int(index[edge_index[1, k]])
        raise InvalidStructureError(
            f"atoms {a} and {b} overlap: distance {dist[k]:.4f} A < {MIN_DISTANCE} A"
        )


def _tally_owned_edges(tally: DomainTally, chunk: Chunk, graph: dict[str, np.ndarray]) -> None:
    """Add the edges into the chunk's owned atoms (all of theirs) to the domain tally."""
    send, recv = graph["edge_index"]
    into_owned = chunk.owned[recv]
    send, recv = send[into_owned], recv[into_owned]
    positions = graph["positions"]
    lengths = np.linalg.norm(positions[recv] - positions[send], axis=1)
    tally.add(chunk.index[send], chunk.index[recv], lengths)


def evaluate_chunk(
    model: torch.nn.Module,
    graph: dict[str, np.ndarray],
    summed: np.ndarray,
    dtype: torch.dtype,
    device: torch.device,
    forces: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Site energies [m] of every chunk atom, and ``d(sum of the summed ones)/d(positions)``.

    ``summed`` [m] bool selects the site energies whose sum is differentiated
    (the gradient, [m, 3], is None unless ``forces``).
    """
    from pansim.graph import collate

    data = collate([graph], dtype=dtype, device=device)
    positions = data["positions"].requires_grad_(forces)
    mask = torch.as_tensor(summed, device=device)
    with torch.set_grad_enabled(forces):
        out = model(data, compute_force=False, compute_stress=False)
        site = out["node_energy"]
        grad = None
        if forces:
            (grad,) = torch.autograd.grad(site[mask].sum(), positions, allow_unused=True)
            grad = torch.zeros_like(positions) if grad is None else grad
    site = site.detach().cpu().double().numpy()
    return site, None if grad is None else grad.cpu().double().numpy()


def plan(atoms: Atoms, model: torch.nn.Module, max_atoms: int) -> np.ndarray | None:
    """The grid for ``atoms``, or None for the whole-cell path (warning when forced to)."""
    if len(atoms) <= max_atoms:
        return None
    validate_atoms(atoms, [int(z) for z in model.atomic_numbers])
    check_cell_density(atoms, float(model.r_max))
    halo = halo_depth(model)
    grid = choose_grid(make_frame(atoms, float(model.r_max)), len(atoms), max_atoms, halo)
    if grid is None:
        warnings.warn(
            f"cell too small for chunking: any chunk with a halo of n_interactions * r_max "
            f"= {halo:g} A holds at least as many atoms as the whole cell ({len(atoms)}); "
            f"evaluating the whole cell in one call (max_atoms_per_chunk={max_atoms} exceeded)",
            stacklevel=3,
        )
    return grid


def evaluate_chunked(
    model: torch.nn.Module,
    atoms: Atoms,
    properties: Sequence[str],
    grid: np.ndarray,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    domain: dict | None = None,
) -> dict[str, Any]:
    """ASE results of ``atoms`` (energy, free_energy, energies; forces, stress if asked).

    Parameters
    ----------
    model : torch.nn.Module
        A ready pansim model (see :func:`pansim.calculator.resolve_model`).
    atoms : ase.Atoms
        Any boundary conditions; ``stress`` needs a fully periodic cell.
    properties : sequence of str
        What to compute: a ``forces`` or ``stress`` request runs the backward passes.
    grid : np.ndarray
        Regions per axis, from :func:`plan`.
    domain : dict, optional
        Training-domain statistics (:func:`pansim.domain.model_domain`): the results
        then hold ``warnings``, the lines :func:`pansim.domain.check_domain` gives for
        the whole structure (gathered from the edges into every chunk's owned atoms,
        each edge of the structure once).
    """
    r_max = float(model.r_max)
    want_stress = "stress" in properties
    want_forces = "forces" in properties or want_stress
    n = len(atoms)
    numbers = np.asarray(atoms.numbers)
    atomic_numbers = [int(z) for z in model.atomic_numbers]
    energies = np.zeros(n)
    forces = np.zeros((n, 3))
    virial = np.zeros((3, 3))
    tally = None if domain is None else DomainTally(numbers)
    for chunk in iter_chunks(atoms, grid, halo_depth(model), r_max):
        graph = chunk_graph(chunk, numbers, atomic_numbers, r_max)
        if tally is not None:
            _tally_owned_edges(tally, chunk, graph)
        site, grad = evaluate_chunk(
            model, graph, chunk.owned, dtype, torch.device(device), want_forces
        )
        energies[chunk.index[chunk.owned]] = site[chunk.owned]
        if grad is not None:
            np.add.at(forces, chunk.index, -grad)
            virial += graph["positions"].T @ grad
    energy = float(energies.sum())
    results: dict[str, Any] = {"energy": energy, "free_energy": energy, "energies": energies}
    if tally is not None:
        results["warnings"] = tally.findings(domain)
    if want_forces:
        results["forces"] = forces
    if want_stress:
        stress = 0.5 * (virial + virial.T) / abs(np.linalg.det(atoms.cell.array))
        results["stress"] = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    return results
