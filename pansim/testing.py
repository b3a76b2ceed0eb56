"""Reusable invariant checks for pansim models, modules and calculators (docs/spec.md §1.3).

Every check is one line in a test and raises ``AssertionError`` naming what
failed and by how much. Most checks take an *evaluate* callable,

    evaluate(atoms) -> {"energy": float (eV), "forces": [n, 3] (eV/A),
                        "stress": [3, 3] (eV/A^3, ASE sign) or None}

so that they work for a raw model and for any ASE calculator alike. An
evaluator may carry an ``energy(atoms) -> float`` attribute, a cheaper
energy-only path that the finite-difference checks then use:

>>> evaluate = model_evaluator(model)            # a pansim model, via pansim.graph
>>> evaluate = calculator_evaluator(calc)        # any ASE calculator
>>> assert_invariance(evaluate, atoms)           # rotations, reflections, translations,
...                                              # permutations, periodic images
>>> assert_forces_fd(evaluate, atoms)            # forces = -dE/dr (finite differences)
>>> assert_stress_fd(evaluate, atoms)            # stress = (1/V) dE/d(strain)
>>> assert_smooth_cutoff(evaluate, atoms, r_max) # no jump as a neighbour crosses r_max
>>> assert_identity_at_init([m_base, m_pan], atoms)  # same energies/forces
>>> assert_twice_differentiable(model, atoms)    # gradcheck of forces (Hessian, parameters)
>>> assert_jit_matches(model, atoms)             # torch.jit.script == eager (or a data dict)

Helpers: :func:`random_atoms` (random molecule or triclinic periodic cell with a
minimum distance) and :func:`perturb_parameters` (move zero-initialised weights
away from zero, so the checks exercise modules that start as identities).

All comparisons use ``|a - b| <= atol + rtol * max|b|`` per quantity; defaults
are float64-tight. Nothing here modifies the caller's ``Atoms``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms

Evaluate = Callable[[Atoms], dict[str, Any]]

__all__ = [
    "Evaluate",
    "model_evaluator",
    "calculator_evaluator",
    "random_atoms",
    "perturb_parameters",
    "assert_close",
    "assert_invariance",
    "assert_forces_fd",
    "assert_stress_fd",
    "assert_smooth_cutoff",
    "assert_identity_at_init",
    "assert_twice_differentiable",
    "assert_jit_matches",
]


# -- evaluators ------------------------------------------------------------------
def model_graph(
    model: torch.nn.Module, atoms: Atoms, dtype: torch.dtype = torch.float64
) -> dict[str, torch.Tensor]:
    """The contract's input dict for one structure (see :mod:`pansim.graph`)."""
    from pansim.graph import atoms_to_graph, collate

    numbers = [int(z) for z in model.atomic_numbers]
    return collate([atoms_to_graph(atoms, numbers, float(model.r_max))], dtype=dtype)


def model_evaluator(model: torch.nn.Module, dtype: torch.dtype = torch.float64) -> Evaluate:
    """``evaluate(atoms)`` for a pansim model; stress only for fully periodic cells."""

    def evaluate(atoms: Atoms) -> dict[str, Any]:
        periodic = bool(np.all(atoms.pbc))
        out = model(model_graph(model, atoms, dtype), compute_stress=periodic)
        stress = out["stress"][0].detach().cpu().numpy() if periodic else None
        return {
            "energy": float(out["energy"][0]),
            "forces": out["forces"].detach().cpu().numpy(),
            "stress": stress,
        }

    def energy(atoms: Atoms) -> float:
        return float(model(model_graph(model, atoms, dtype), compute_force=False)["energy"][0])

    evaluate.energy = energy  # energy only: finite differences need no forces
    return evaluate


def _energy_fn(evaluate: Evaluate) -> Callable[[Atoms], float]:
    """``evaluate.energy`` if the evaluator has a cheaper energy-only path."""
    return getattr(evaluate, "energy", None) or (lambda atoms: evaluate(atoms)["energy"])


def calculator_evaluator(calc: Any) -> Evaluate:
    """``evaluate(atoms)`` for an ASE calculator; stress only for fully periodic cells."""

    def evaluate(atoms: Atoms) -> dict[str, Any]:
        work = atoms.copy()
        work.calc = calc
        periodic = bool(np.all(work.pbc))
        return {
            "energy": float(work.get_potential_energy()),
            "forces": np.array(work.get_forces()),
            "stress": np.array(work.get_stress(voigt=False)) if periodic else None,
        }

    return evaluate


# -- structures and parameters ------------------------------------------------------
def random_atoms(
    symbols: str | Sequence[str] = "Si4",
    pbc: bool | Sequence[bool] = True,
    seed: int = 0,
    volume_per_atom: float = 18.0,
    min_distance: float = 1.6,
) -> Atoms:
    """Random structure: a triclinic cell (or an open cluster) with a minimum distance.

    Parameters
    ----------
    symbols : str or sequence of str
        Chemical formula or symbols.
    pbc : bool or 3 bools
        Periodic directions; open directions get no cell row constraint.
    seed : int
        Random seed.
    volume_per_atom : float
        Target volume per atom (A^3) of the cell / cluster box.
    min_distance : float
        Minimum interatomic distance (A), minimum image included.
    """
    rng = np.random.default_rng(seed)
    atoms = Atoms(symbols, pbc=pbc)
    n = len(atoms)
    side = (volume_per_atom * n) ** (1.0 / 3.0)
    cell = side * (np.eye(3) + 0.15 * rng.uniform(-1, 1, (3, 3)))
    atoms.set_cell(cell)
    mic = bool(np.any(atoms.pbc))
    for _ in range(50):  # sequential random placement, restarted when stuck
        scaled = np.zeros((n, 3))
        for k in range(n):
            for _ in range(200):
                scaled[k] = rng.uniform(0, 1, 3)
                atoms.set_scaled_positions(scaled)
                if k == 0 or atoms.get_distances(k, range(k), mic=mic).min() > min_distance:
                    break
            else:
                break
        else:
            return atoms
    raise RuntimeError(f"could not place {n} atoms {min_distance} A apart; lower the density")


def perturb_parameters(
    model: torch.nn.Module, scale: float = 0.1, seed: int = 0, include: str = ""
) -> torch.nn.Module:
    """Add noise ``scale * N(0, 1)`` in place to the parameters whose name contains ``include``.

    Zero-initialised last layers (PAN, PGS) start as exact identities; perturbing
    them makes the invariance and derivative checks exercise the modules.
    Parameters are taken by their state dict names, in state dict order
    (:func:`pansim.backbones.state_dict_parameters`), so the same seed moves
    the same weights whatever the module tree.
    """
    from pansim.backbones import state_dict_parameters

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in state_dict_parameters(model):
            if include in name:
                noise = torch.randn(p.shape, generator=generator, dtype=torch.float64)
                p.add_(scale * noise.to(p.dtype))
    return model


# -- comparisons -----------------------------------------------------------------------
def assert_close(actual: Any, expected: Any, what: str, rtol: float, atol: float) -> None:
    """Assert ``|actual - expected| <= atol + rtol * max|expected|`` (message names ``what``)."""
    a, b = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shape {a.shape} != expected {b.shape}")
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    tol = atol + rtol * (float(np.max(np.abs(b))) if b.size else 0.0)
    if not err <= tol:  # also catches NaN
        raise AssertionError(f"{what}: max deviation {err:.3e} > tolerance {tol:.3e}")


def _compare(
    got: dict, ref: dict, what: str, rtol: float, atol: float, rotation=None, order=None
) -> None:
    """Compare results with the reference mapped by ``rotation`` [3,3] and atom ``order``."""
    rot = np.eye(3) if rotation is None else rotation
    forces = ref["forces"] @ rot.T
    if order is not None:
        forces = forces[order]
    assert_close(got["energy"], ref["energy"], f"{what}: energy", rtol, atol)
    assert_close(got["forces"], forces, f"{what}: forces", rtol, atol)
    if got.get("stress") is not None and ref.get("stress") is not None:
        assert_close(got["stress"], rot @ ref["stress"] @ rot.T, f"{what}: stress", rtol, atol)


# -- symmetry -------------------------------------------------------------------------------
def _random_rotation(rng: np.random.Generator, proper: bool = True) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if (np.linalg.det(q) > 0) != proper:
        q[:, 0] = -q[:, 0]
    return q


def _transformed(atoms: Atoms, rotation: np.ndarray) -> Atoms:
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    out.positions = atoms.positions @ rotation.T
    return out


def _unimodular(rng: np.random.Generator, pbc: np.ndarray) -> np.ndarray:
    """Integer matrix with det 1 mixing only the periodic cell rows."""
    m = np.eye(3, dtype=int)
    periodic = np.flatnonzero(pbc)
    for _ in range(6):
        if len(periodic) < 2:
            break
        i, j = rng.choice(periodic, 2, replace=False)
        shear = np.eye(3, dtype=int)
        shear[i, j] = rng.choice([-1, 1])
        m = shear @ m
    return m


def _image_variants(atoms: Atoms, rng: np.random.Generator) -> Iterable[tuple[str, Atoms]]:
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.any():
        return
    shifted = atoms.copy()
    jumps = rng.integers(-2, 3, size=(len(atoms), 3)) * pbc
    shifted.positions = atoms.positions + jumps @ atoms.cell.array
    yield "periodic image (atoms moved by lattice vectors)", shifted
    wrapped = atoms.copy()
    wrapped.wrap()
    yield "periodic image (wrapped positions)", wrapped
    if pbc.sum() >= 2:
        other = atoms.copy()
        other.set_cell(_unimodular(rng, pbc) @ atoms.cell.array, scale_atoms=False)
        yield "periodic image (equivalent cell, unimodular transform)", other


def assert_invariance(
    evaluate: Evaluate,
    atoms: Atoms,
    seed: int = 0,
    rtol: float = 1e-9,
    atol: float = 1e-10,
) -> None:
    """Energy invariant, forces and stress equivariant (docs/spec.md §1.3 invariant 1).

    Checks a random rotation, a random reflection (improper rotation), a random
    translation, a random permutation of the atoms and, for periodic structures,
    other periodic images of the atoms and an equivalent cell (unimodular
    transform of the periodic cell rows). Stress is compared where both results
    have one.
    """
    rng = np.random.default_rng(seed)
    ref = evaluate(atoms)
    for name, proper in (("rotation", True), ("reflection", False)):
        rot = _random_rotation(rng, proper)
        _compare(evaluate(_transformed(atoms, rot)), ref, name, rtol, atol, rotation=rot)
    moved = atoms.copy()
    moved.positions = atoms.positions + rng.normal(scale=3.0, size=3)
    _compare(evaluate(moved), ref, "translation", rtol, atol)
    order = rng.permutation(len(atoms))
    _compare(evaluate(atoms[order]), ref, "permutation", rtol, atol, order=order)
    for name, variant in _image_variants(atoms, rng):
        _compare(evaluate(variant), ref, name, rtol, atol)


# -- finite differences --------------------------------------------------------------------
def _derivative(energy: Callable[[float], float], h: float) -> float:
    """Fourth-order central difference dE/dx at 0."""
    return (-energy(2 * h) + 8 * energy(h) - 8 * energy(-h) + energy(-2 * h)) / (12 * h)


def assert_forces_fd(
    evaluate: Evaluate,
    atoms: Atoms,
    directions: int = 3,
    h: float = 1e-3,
    seed: int = 0,
    rtol: float = 1e-8,
    atol: float = 1e-9,
) -> None:
    """Forces are minus the gradient of the energy (docs/spec.md §1.3 invariant 2).

    Compares ``-F . d`` with a fourth-order finite difference of ``E(r + a d)``
    along ``directions`` random unit directions ``d`` of all atoms, plus one
    along a single Cartesian coordinate of atom 0 (eV/A). The relative
    tolerance is with respect to ``|F|`` (norm of all forces).
    """
    rng = np.random.default_rng(seed)
    ref, energy_of = evaluate(atoms), _energy_fn(evaluate)
    single = np.zeros((len(atoms), 3))
    single[0, 0] = 1.0
    trials = [rng.normal(size=(len(atoms), 3)) for _ in range(directions)] + [single]
    scale = float(np.linalg.norm(ref["forces"]))
    for k, d in enumerate(trials):
        d = d / np.linalg.norm(d)

        def energy(a: float, d=d) -> float:
            moved = atoms.copy()
            moved.positions = atoms.positions + a * d
            return energy_of(moved)

        fd = _derivative(energy, h)
        analytic = -float(np.sum(ref["forces"] * d))
        err = abs(fd - analytic)
        if not err <= atol + rtol * scale:
            raise AssertionError(
                f"forces vs finite differences, direction {k}: -F.d = {analytic:.10e}, "
                f"dE/da = {fd:.10e}, deviation {err:.3e} > {atol + rtol * scale:.3e}"
            )


def assert_stress_fd(
    evaluate: Evaluate,
    atoms: Atoms,
    h: float = 1e-4,
    rtol: float = 1e-8,
    atol: float = 1e-10,
) -> None:
    """Stress is ``(1/V) dE/d(strain)`` (docs/spec.md §1.3 invariant 2), all six symmetric strains.

    Needs a fully periodic structure. Strain ``e`` deforms cell and positions by
    ``(I + e)``. The relative tolerance is with respect to ``max|stress|``.
    """
    if not np.all(atoms.pbc):
        raise ValueError("assert_stress_fd needs a fully periodic structure")
    ref, energy_of = evaluate(atoms), _energy_fn(evaluate)
    stress, volume = np.asarray(ref["stress"]), atoms.get_volume()
    scale = float(np.max(np.abs(stress)))
    for i, j in ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)):
        e = np.zeros((3, 3))
        e[i, j] = e[j, i] = 0.5 if i != j else 1.0

        def energy(a: float, e=e) -> float:
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ (np.eye(3) + a * e), scale_atoms=True)
            return energy_of(strained)

        fd = _derivative(energy, h) / volume  # symmetric e: dE/da = V stress_ij
        analytic = stress[i, j]
        err = abs(fd - analytic)
        if not err <= atol + rtol * scale:
            raise AssertionError(
                f"stress[{i},{j}] vs finite differences: analytic {analytic:.10e}, "
                f"(1/V) dE/de = {fd:.10e}, deviation {err:.3e} > {atol + rtol * scale:.3e}"
            )


# -- smoothness ---------------------------------------------------------------------------------
def assert_smooth_cutoff(
    evaluate: Evaluate,
    atoms: Atoms,
    r_max: float,
    index: int = 0,
    h: float = 1e-5,
    atol: float = 1e-9,
) -> None:
    """No jump in energy or forces when a neighbour crosses ``r_max`` (docs/spec.md §1.3, 2).

    Moves atom ``index`` along the line from its nearest neighbour ``j`` so that
    ``d_ij`` takes the values ``r_max + (-3h, -h, h, 3h)``. The third finite
    difference ``f(3h) - 3f(h) + 3f(-h) - f(-3h)`` is O(h^3) for a smooth ``f``
    and ``-2 * jump`` for a jump at ``r_max``; it must stay below ``atol`` (eV,
    eV/A) for the energy and every force component. Non-periodic structures
    are simplest; for periodic ones ``j`` is the nearest minimum image.
    """
    i = index % len(atoms)
    d = atoms.get_distances(i, range(len(atoms)), mic=bool(np.any(atoms.pbc)), vector=True)
    dist = np.linalg.norm(d, axis=1)
    dist[i] = np.inf
    j = int(np.argmin(dist))
    unit = -d[j] / dist[j]  # from j towards i
    base = atoms.positions[i] + unit * (r_max - dist[j])  # d_ij = r_max
    results = []
    for a in (-3 * h, -h, h, 3 * h):
        moved = atoms.copy()
        moved.positions[i] = base + a * unit
        results.append(evaluate(moved))
    for key in ("energy", "forces"):
        f = [np.asarray(r[key], dtype=float) for r in results]
        third = f[3] - 3 * f[2] + 3 * f[1] - f[0]
        err = float(np.max(np.abs(third)))
        if not err <= atol:
            raise AssertionError(
                f"{key} not smooth as atoms {i} and {j} cross r_max = {r_max} A: "
                f"third difference {err:.3e} > {atol:.3e} (a jump of about {err / 2:.3e})"
            )


# -- model-level checks ---------------------------------------------------------------
def assert_identity_at_init(
    models: Sequence[torch.nn.Module | Evaluate],
    atoms: Atoms | Sequence[Atoms],
    rtol: float = 1e-12,
    atol: float = 1e-12,
) -> None:
    """All ``models`` (modules or evaluate callables) agree (docs/spec.md §1.3, 3)."""
    evaluates = [m if not isinstance(m, torch.nn.Module) else model_evaluator(m) for m in models]
    structures = [atoms] if isinstance(atoms, Atoms) else list(atoms)
    for n, structure in enumerate(structures):
        ref = evaluates[0](structure)
        for k, evaluate in enumerate(evaluates[1:], start=1):
            _compare(evaluate(structure), ref, f"model {k} vs model 0, structure {n}", rtol, atol)


def _positions_fn(model: torch.nn.Module, data: dict[str, torch.Tensor], stress: bool):
    def forces_and_stress(positions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = model({**data, "positions": positions}, training=True, compute_stress=stress)
        return (out["forces"], out["stress"]) if stress else (out["forces"],)

    return forces_and_stress


def _parameters_fn(model, data, names: list[str], stress: bool):
    from torch.func import functional_call

    def forces_and_stress(*params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = functional_call(
            model, dict(zip(names, params, strict=True)), (dict(data),),
            {"training": True, "compute_stress": stress},
        )  # fmt: skip
        return (out["forces"], out["stress"]) if stress else (out["forces"],)

    return forces_and_stress


def assert_twice_differentiable(
    model: torch.nn.Module,
    atoms: Atoms,
    parameters: Sequence[str] | None = None,
    max_parameters: int = 3,
    atol: float = 1e-6,
    rtol: float = 1e-5,
) -> None:
    """Forces (and stress) are differentiable again (docs/spec.md §1.3, 4): float64 gradcheck.

    Checks with :func:`torch.autograd.gradcheck` the derivatives of forces (and,
    for periodic structures, stress) with respect to the positions (the Hessian)
    and with respect to model ``parameters`` (names; default: up to
    ``max_parameters`` of the smallest parameter tensors), and that a force and
    stress loss backpropagates to finite gradients of all parameters.
    """
    data = model_graph(model, atoms, torch.float64)
    stress = bool(np.all(atoms.pbc))
    positions = data["positions"].clone().requires_grad_(True)
    fn = _positions_fn(model, data, stress)
    if not torch.autograd.gradcheck(
        fn, (positions,), atol=atol, rtol=rtol, raise_exception=False, fast_mode=True
    ):
        raise AssertionError("gradcheck failed: derivative of forces/stress w.r.t. positions")
    named = dict(model.named_parameters())
    if parameters is None:
        parameters = sorted(named, key=lambda k: named[k].numel())[:max_parameters]
    params = tuple(named[k].detach().clone().requires_grad_(True) for k in parameters)
    fn = _parameters_fn(model, data, list(parameters), stress)
    if not torch.autograd.gradcheck(
        fn, params, atol=atol, rtol=rtol, raise_exception=False, fast_mode=True
    ):
        raise AssertionError(
            f"gradcheck failed: forces/stress w.r.t. parameters {list(parameters)}"
        )
    _assert_loss_backward(model, data, stress)


def _assert_loss_backward(model: torch.nn.Module, data: dict, stress: bool) -> None:
    model.zero_grad()
    out = model(dict(data), training=True, compute_stress=stress)
    loss = out["energy"].square().sum() + out["forces"].square().sum()
    if stress:
        loss = loss + out["stress"].square().sum()
    loss.backward()
    bad = [
        n
        for n, p in model.named_parameters()
        if p.grad is not None and not torch.isfinite(p.grad).all()
    ]
    model.zero_grad()
    if bad:
        raise AssertionError(f"non-finite gradients of the force/stress loss for {bad}")


def assert_jit_matches(
    model: torch.nn.Module,
    atoms: Atoms | dict[str, torch.Tensor],
    rtol: float = 1e-12,
    atol: float = 1e-12,
) -> torch.jit.ScriptModule:
    """``torch.jit.script(model)`` gives the eager results; returns the scripted model.

    ``atoms`` is a structure (stress is compared if it is fully periodic) or a
    ready input dict of the model contract (stress always compared).
    Compares energy, node_energy, forces and stress.
    """
    scripted = torch.jit.script(model)
    if isinstance(atoms, Atoms):
        stress = bool(np.all(atoms.pbc))
        data = model_graph(model, atoms, next(model.parameters()).dtype)
    else:
        stress, data = True, atoms
    eager = model(dict(data), compute_stress=stress)
    script = scripted(dict(data), compute_stress=stress)
    for key in ("energy", "node_energy", "forces") + (("stress",) if stress else ()):
        a, b = script[key].detach().cpu().numpy(), eager[key].detach().cpu().numpy()
        assert_close(a, b, f"scripted vs eager {key}", rtol, atol)
    return scripted
