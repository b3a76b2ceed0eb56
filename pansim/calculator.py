"""``PANCalculator``: the ASE face of every pansim model.

>>> from pansim import PANCalculator
>>> atoms.calc = PANCalculator(model="si")          # a registered pretrained model
>>> atoms.calc = PANCalculator(model="my.safetensors", default_dtype="float32")
>>> atoms.calc = PANCalculator(model=torch_module)  # any model of the pansim contract
"""

from __future__ import annotations

import copy
import io
import logging
import os
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from pansim._memory import keep_freed_memory
from pansim.committee import (
    add_committee_results,
    committee_provenance,
    is_committee,
    resolve_committee,
)
from pansim.domain import DomainWarning, check_domain, model_domain
from pansim.graph import InvalidStructureError, atoms_to_graph, collate
from pansim.precision import DTYPES
from pansim.provenance import model_provenance

_DTYPES = DTYPES


def resolve_model(
    model: str | os.PathLike | torch.nn.Module,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> torch.nn.Module:
    """A ready model (eval mode, frozen, on ``device`` in ``dtype``) from a name, path or module.

    Parameters
    ----------
    model : str, PathLike or torch.nn.Module
        A registered pretrained name (checked first), a model file of
        ``pansim.save_model``, or a module of the pansim model contract (eager
        or TorchScript), which is copied and never changed in place.
    device : str or torch.device
        Where the model runs.
    dtype : torch.dtype
        Floating-point type of the parameters (integer buffers are kept).

    Returns
    -------
    torch.nn.Module
        The model, in eval mode with ``requires_grad=False`` parameters.

    Raises
    ------
    pansim.pretrained.UnknownModelError
        A string that is neither registered nor an existing file (the message
        lists the registered names).
    pansim.model_io.ModelFileError
        A corrupt, truncated or incompatible model file (from ``load_model``).
    """
    from pansim.model_io import load_model
    from pansim.pretrained import model_file

    if isinstance(model, torch.nn.Module):
        module = _copy_module(model)
    elif isinstance(model, (str, os.PathLike)):
        module = load_model(model_file(model))
    else:
        raise TypeError(f"model must be a name, a path or a torch.nn.Module, not {type(model)}")
    module = module.to(device=device, dtype=dtype).eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _copy_module(model: torch.nn.Module) -> torch.nn.Module:
    """An independent copy; TorchScript modules go through ``torch.jit.save``/``load``.

    (``copy.deepcopy`` of a ScriptModule gives non-leaf parameters, which cannot
    be frozen.)
    """
    if isinstance(model, torch.jit.ScriptModule):
        buffer = io.BytesIO()
        torch.jit.save(model, buffer)
        buffer.seek(0)
        return torch.jit.load(buffer, map_location="cpu")
    return copy.deepcopy(model)


class PANCalculator(Calculator):
    """ASE calculator for pansim models (energy, free_energy, forces, stress, energies).

    Parameters
    ----------
    model : str, PathLike, torch.nn.Module, or a list of them
        A registered pretrained name (``pansim.pretrained.list_models()``), a
        model file written by ``pansim.save_model``, or a model module. A list
        (or a committee name such as ``"si-committee"``) is a committee: the
        results hold the mean and the spread (keys in ``pansim.committee``).
    device : str
        Torch device, e.g. ``"cpu"`` or ``"cuda"``.
    default_dtype : {"float64", "float32"}
        Precision of the model and the graph.
    keep_memory : bool
        Opt-in (default False): switch glibc malloc, for the whole process, to
        keep the memory freed after each evaluation for the next one (no mmap'd
        blocks, no heap trimming; :func:`pansim.keep_freed_memory`). Repeated
        evaluations of large cells then stop faulting fresh pages in; the
        process keeps its peak memory. The ``pansim`` command line turns it on
        for its own process. See docs/memory.md for the measured cost of the
        default.
    check_domain : bool
        Report structures outside the model's training data (see below).
    max_atoms_per_chunk : int, "auto" or None
        Evaluate structures with more atoms chunk by chunk, each model call
        holding at most this many atoms (owned + halo), with the whole-cell
        results (:mod:`pansim.chunking`, docs/chunking.md). ``"auto"`` chooses
        the size from the memory available and the model's measured memory per
        atom (the whole cell where it fits); ``chunk_size`` holds the last one.

    Notes
    -----
    Units: eV, eV/A, eV/A^3 (ASE sign convention). Stress is available for
    fully periodic cells only (``PropertyNotImplementedError`` otherwise).
    Only what is asked is computed: an energy (or ``energies``) request runs
    no backward pass, a forces request builds no strain graph, and a stress
    request also returns the forces, which come out of the same single
    backward pass at no extra cost. Results are cached by ASE's
    ``check_state``: asking again for the same structure does not recompute.
    The model is a frozen copy (eval mode, ``requires_grad=False``) in
    ``default_dtype``; the caller's module and ``Atoms`` are never modified.

    Structures no model can evaluate raise
    :class:`pansim.graph.InvalidStructureError` naming the problem: elements
    the model does not know (the supported ones are listed), NaN/inf positions
    or cell, atoms closer than 0.1 A, empty ``Atoms``, zero cell volume under
    pbc. For how ``model`` is resolved and its errors see :func:`resolve_model`.
    A ``device`` that this machine lacks (``"cuda"`` without CUDA) raises
    ``ValueError`` naming it.

    Out of domain: for model files that carry training-data statistics (every
    file written by ``pansim train``, and the shipped models), each result
    holds ``results["warnings"]``, a list of lines naming how the structure
    lies outside the training data (element combination, distances,
    coordination; see :mod:`pansim.domain`), empty inside it. The first
    finding of each kind is also issued as a :class:`pansim.domain.DomainWarning`
    and logged. ``check_domain=False`` turns this off.

    Thread safety: one calculator may be shared by several threads. Each
    ``calculate``/``get_property`` call (and ``batch_evaluate``) holds the
    calculator's lock, so calls are serialised and every caller gets the
    results of its own structure; threads that should run in parallel need
    one calculator each.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(
        self,
        model: str | os.PathLike | torch.nn.Module,
        device: str = "cpu",
        default_dtype: str = "float64",
        keep_memory: bool = False,
        check_domain: bool = True,
        max_atoms_per_chunk: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._lock = threading.RLock()
        if keep_memory:
            keep_freed_memory()
        if default_dtype not in _DTYPES:
            raise ValueError(
                f"default_dtype must be one of {sorted(_DTYPES)}, not {default_dtype!r}"
            )
        self.dtype = _DTYPES[default_dtype]
        self.device = check_device(device)
        # provenance in calc.parameters / calc.todict() (and so in ASE trajectories)
        if is_committee(model):  # several models: mean + spread (pansim.committee)
            self.model = resolve_committee(model, self.device, self.dtype)
            provenance = committee_provenance(model, default_dtype)
        else:
            self.model = resolve_model(model, self.device, self.dtype)
            provenance = model_provenance(model, self.model, default_dtype)
        self.parameters.update(provenance)
        self.atomic_numbers = [int(z) for z in self.model.atomic_numbers]
        self.r_max = float(self.model.r_max)
        self.domain = model_domain(self.model) if check_domain else None
        self._warned: set[str] = set()

        self.max_atoms_per_chunk = _chunk_size(max_atoms_per_chunk, self.model)
        #: chunk size of the last call (``max_atoms_per_chunk``, or the one "auto" chose)
        self.chunk_size = None if max_atoms_per_chunk == "auto" else self.max_atoms_per_chunk
        self._memory_model = None  # "auto": bytes per atom and edge, measured at first use

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)  # locks neither pickle nor deepcopy
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def get_property(self, name: str, atoms: Atoms | None = None, allow_calculation: bool = True):
        """ASE's ``get_property`` under the calculator's lock (see the class notes)."""
        with self._lock:
            return super().get_property(name, atoms, allow_calculation)

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = all_changes,
    ) -> None:
        """Evaluate the asked ``properties`` for ``atoms`` into ``self.results``."""
        with self._lock:
            self._calculate(atoms, properties, system_changes)

    def _calculate(
        self, atoms: Atoms | None, properties: Sequence[str], system_changes: Sequence[str]
    ) -> None:
        Calculator.calculate(self, atoms, properties, system_changes)
        if "stress" in properties and not np.all(self.atoms.pbc):
            pbc = self.atoms.pbc.tolist()
            raise PropertyNotImplementedError(
                f"stress needs a fully periodic cell; this structure has pbc={pbc}"
            )
        grid = None
        if self.max_atoms_per_chunk == "auto":
            from pansim import chunking

            if self._memory_model is None:
                self._memory_model = chunking.calibrate(self.model, self.dtype, self.device)
            self.chunk_size, grid = chunking.auto_plan(
                self.atoms, self.model, self._memory_model, self.device
            )
            logging.getLogger("pansim.chunking").info(
                "max_atoms_per_chunk='auto': %d atoms per chunk (%s)", self.chunk_size,
                "whole cell" if grid is None else f"grid {grid.tolist()}",
            )  # fmt: skip
        elif self.max_atoms_per_chunk is not None:
            from pansim import chunking

            grid = chunking.plan(self.atoms, self.model, self.max_atoms_per_chunk)
        if grid is not None:
            self.results = chunking.evaluate_chunked(
                self.model, self.atoms, properties, grid, self.dtype, self.device, self.domain
            )
            if self.domain is not None:
                self._warn_domain(self.results["warnings"], stacklevel=4)
            return
        self.results = self._evaluate([self.atoms], properties)[0]

    def batch_evaluate(
        self,
        structures: Sequence[Atoms],
        properties: Sequence[str] = ("energy", "forces"),
        batch_size: int = 16,
    ) -> list[dict[str, Any]]:
        """Evaluate many structures in batched model calls (``batch_size`` per call).

        Parameters
        ----------
        structures : sequence of ase.Atoms
            Structures of any size and boundary conditions (never modified).
        properties : sequence of str
            Subset of ``implemented_properties``; ``stress`` needs every
            structure to be fully periodic.
        batch_size : int
            Structures per model call.

        Returns
        -------
        list of dict
            One dict per structure with ``energy``/``free_energy`` (float, eV),
            ``energies`` [n_atoms] (eV), and where asked ``forces`` [n_atoms, 3]
            (eV/A) and ``stress`` [6] (Voigt, eV/A^3): the values that single
            calls give, to float round-off.
        """
        unknown = sorted(set(properties) - set(self.implemented_properties))
        if unknown:
            raise PropertyNotImplementedError(
                f"{unknown} not implemented; available: {self.implemented_properties}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if "stress" in properties:
            bad = [k for k, a in enumerate(structures) if not np.all(a.pbc)]
            if bad:
                raise PropertyNotImplementedError(
                    f"stress asked for non-periodic structures {bad[:5]}"
                )
        out: list[dict[str, Any]] = []
        with self._lock:
            for start in range(0, len(structures), batch_size):
                chunk = structures[start : start + batch_size]
                out.extend(self._evaluate(chunk, properties, first_index=start))
        return out

    def _evaluate(
        self, structures: Sequence[Atoms], properties: Sequence[str], first_index: int | None = None
    ) -> list[dict]:
        """One model call for ``structures``; ``first_index`` names them in errors."""
        graphs = []
        for k, atoms in enumerate(structures):
            try:
                graphs.append(atoms_to_graph(atoms, self.atomic_numbers, self.r_max))
            except InvalidStructureError as err:
                if first_index is None:
                    raise
                raise InvalidStructureError(f"structure {first_index + k}: {err}") from None
        findings = [
            self._check_domain(g, a.numbers) for g, a in zip(graphs, structures, strict=True)
        ]
        data = collate(graphs, dtype=self.dtype, device=self.device)
        want_stress = "stress" in properties
        want_forces = "forces" in properties or want_stress  # same backward pass
        # forces need autograd (w.r.t. positions only: the parameters are frozen);
        # eager pansim models enable it themselves, TorchScript ones cannot
        with torch.set_grad_enabled(want_forces):
            out = self.model(data, compute_force=want_forces, compute_stress=want_stress)
        results = _split_results(out, data["ptr"].cpu().numpy(), want_forces, want_stress)
        if "members_energy" in out:  # a committee: add its spread (pansim.committee)
            add_committee_results(out, data["ptr"].cpu().numpy(), results)
        if self.domain is not None:
            for r, lines in zip(results, findings, strict=True):
                r["warnings"] = lines
        return results

    def _check_domain(self, graph: dict, numbers: np.ndarray) -> list[str]:
        """Out-of-domain findings of one graph; the first of each kind is warned and logged."""
        if self.domain is None:
            return []
        lines = check_domain(graph, numbers, self.domain)
        self._warn_domain(lines, stacklevel=5)
        return lines

    def _warn_domain(self, lines: list[str], stacklevel: int) -> None:
        """Warn and log the first finding of each kind (``stacklevel`` from this method)."""
        for line in lines:
            kind = line.split(" ")[0]
            if kind not in self._warned:
                self._warned.add(kind)
                message = f"structure outside the model's training data: {line}"
                warnings.warn(message, DomainWarning, stacklevel=stacklevel)
                logging.getLogger("pansim.domain").warning(message)


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device`` if this machine has it, else a ``ValueError`` naming it."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device ({err})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {str(device)!r} asked, but CUDA is not available here "
                f"(torch {torch.__version__}); use device='cpu'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(device)!r} asked, but only {torch.cuda.device_count()} CUDA "
                "device(s) are visible"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r} asked, but MPS is not available here")
    return dev


def _chunk_size(value: int | str | None, model: torch.nn.Module) -> int | str | None:
    """``max_atoms_per_chunk`` checked: None, "auto" or a positive int (model allowing it)."""
    if value is None:
        return None
    if value != "auto" and (
        isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1
    ):
        raise ValueError(
            f"max_atoms_per_chunk must be a positive integer, 'auto' or None, not {value!r}"
        )
    from pansim.chunking import halo_depth

    halo_depth(model)  # a model without num_interactions: clear error now
    return value if value == "auto" else int(value)


def _split_results(
    out: dict[str, torch.Tensor], ptr: np.ndarray, forces: bool, stress: bool
) -> list[dict[str, Any]]:
    """Per-structure ASE results (float64 numpy) from one batched model output."""
    energy = out["energy"].detach().cpu().double().numpy()
    node = out["node_energy"].detach().cpu().double().numpy()
    f = out["forces"].detach().cpu().double().numpy() if forces else None
    s = out["stress"].detach().cpu().double().numpy() if stress else None
    results = []
    for g in range(len(energy)):
        lo, hi = ptr[g], ptr[g + 1]
        e = float(energy[g])
        r = {"energy": e, "free_energy": e, "energies": node[lo:hi].copy()}
        if f is not None:
            r["forces"] = f[lo:hi].copy()
        if s is not None:
            r["stress"] = _voigt(s[g])
        results.append(r)
    return results


def _voigt(s: np.ndarray) -> np.ndarray:
    """3x3 -> ASE Voigt order (xx, yy, zz, yz, xz, xy)."""
    return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
