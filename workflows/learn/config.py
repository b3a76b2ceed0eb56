"""The ``pansim learn`` configuration: one YAML file, checked before anything runs.

Every problem is a :class:`LearnConfigError` that names the key: unknown keys
(with the closest known one), an unknown system, model, labeller or ensemble, a
threshold that is not positive, a ``select.min_per_route`` quota with an unknown
route, a negative count or a sum above ``select.max_per_round``. Keys and
defaults: :data:`DEFAULTS`.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

import yaml

LABELLERS = ("gpaw", "pyscf", "emt")
STAGES = ("explore", "select", "label", "retrain")
RETRAIN_MODES = ("warm", "scratch", "none")

#: every key with its default (``None``: required or off)
DEFAULTS: dict[str, Any] = {
    "system": None,  # name used in provenance and, for gpaw/pyscf, the settings (pansim.data)
    "committee": None,  # committee name (si-committee) or a list of model files
    "labeller": "gpaw",  # gpaw | pyscf | emt
    "labeller_options": {},  # extra worker settings (emt: fail_if_min_distance_below)
    "work_dir": None,  # state, rounds, models (default: runs/learn/<system>)
    "labels_dir": None,  # the labels' manifest and extxyz (default: <work_dir>/labels)
    "validation_file": None,  # fixed labelled set: errors reported every round
    "seed": 0,
    "device": "cpu",
    "label_timeout_s": 4 * 3600,
    "explore": {
        "structure": None,  # a file (ase.io.read), else the system's cubic cell
        "bulk": None,  # or ase.build.bulk keyword arguments (name, crystalstructure, a, cubic)
        "supercell": [1, 1, 1],
        "md": [],  # [{temperature_K, pressure_GPa, ensemble, steps, sample_every, volume_scale}]
        "compress": {"volumes": [], "per_volume": 2, "rattle": 0.05},
        "contact": {"n": 0, "fraction": [0.70, 0.90]},
        "vacancy": {"n": 0, "rattle": 0.05},
    },
    "select": {
        "threshold": None,  # eV/A on forces_std_max (required)
        "max_per_round": 24,
        "bins": 40,
        "r_max": 6.0,
        # route -> n: up to n of that route picked first, even below the threshold,
        # within max_per_round (e.g. {contact: 2}); routes: workflows.learn.explore.ROUTES
        "min_per_route": {},
    },
    "stop": {"max_rounds": 3, "label_budget": 100, "threshold": None},
    "retrain": {"mode": "warm", "config": None, "max_epochs": 20, "train_file": None},
}


class LearnConfigError(ValueError):
    """A ``pansim learn`` configuration that cannot run (the message names the key)."""


def _merge(defaults: dict, given: dict, where: str) -> dict:
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        if key not in defaults:
            close = difflib.get_close_matches(str(key), list(defaults), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise LearnConfigError(f"unknown key {where}{key!r}{hint}; known: {list(defaults)}")
        if isinstance(defaults[key], dict) and defaults[key] and isinstance(value, dict):
            out[key] = _merge(defaults[key], value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def load_config(path: str | Path | dict) -> dict[str, Any]:
    """Read, complete and check a configuration (a YAML file or a dict).

    Relative paths (``work_dir``, ``labels_dir``, ``validation_file``,
    ``retrain.config``, ``retrain.train_file``, ``explore.structure``, committee
    files) are kept as given: they are relative to the working directory.
    """
    if isinstance(path, dict):
        data = path
    else:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise LearnConfigError(f"config file {path} does not exist") from None
    if not isinstance(data, dict):
        raise LearnConfigError(f"{path}: the top level must be a mapping of keys")
    cfg = _merge(DEFAULTS, data, "")
    check(cfg)
    if cfg["work_dir"] is None:
        cfg["work_dir"] = f"runs/learn/{cfg['system']}"
    if cfg["labels_dir"] is None:
        cfg["labels_dir"] = str(Path(cfg["work_dir"]) / "labels")
    return cfg


def _need(cond: Any, message: str) -> None:
    if not cond:
        raise LearnConfigError(message)


def check(cfg: dict[str, Any]) -> None:
    """Raise :class:`LearnConfigError` for the first problem of ``cfg``."""
    _need(cfg["system"], "system is required (e.g. si)")
    labeller = cfg["labeller"]
    _need(labeller in LABELLERS, f"unknown labeller {labeller!r}; known: {list(LABELLERS)}")
    if labeller in ("gpaw", "pyscf"):
        from pansim.data.datasets import SYSTEMS

        _need(
            cfg["system"] in SYSTEMS,
            f"unknown system {cfg['system']!r} for labeller {labeller}; known: {list(SYSTEMS)}",
        )
        kind = SYSTEMS[cfg["system"]].kind
        want = "crystal" if labeller == "gpaw" else "molecule"
        _need(kind == want, f"labeller {labeller} labels {want}s; {cfg['system']} is a {kind}")
    _check_committee(cfg["committee"])
    _need(cfg["validation_file"], "validation_file is required (a fixed labelled extxyz set)")
    _need(
        Path(cfg["validation_file"]).exists(),
        f"validation_file {cfg['validation_file']} does not exist",
    )
    _check_explore(cfg)
    sel, stop, rt = cfg["select"], cfg["stop"], cfg["retrain"]
    _need(sel["threshold"] is not None, "select.threshold is required (eV/A, forces_std_max)")
    _need(float(sel["threshold"]) > 0, f"select.threshold must be > 0 eV/A, not {sel['threshold']}")
    _need(int(sel["max_per_round"]) >= 1, "select.max_per_round must be >= 1")
    _check_quota(sel)
    if stop["threshold"] is None:
        stop["threshold"] = sel["threshold"]
    _need(int(stop["max_rounds"]) >= 1, "stop.max_rounds must be >= 1")
    _need(int(stop["label_budget"]) >= 1, "stop.label_budget must be >= 1")
    _need(
        rt["mode"] in RETRAIN_MODES,
        f"retrain.mode {rt['mode']!r} is not one of {list(RETRAIN_MODES)}",
    )
    if rt["mode"] != "none":
        _need(
            rt["config"],
            "retrain.config (a pansim train YAML) is required unless retrain.mode is none",
        )
        _need(Path(rt["config"]).exists(), f"retrain.config {rt['config']} does not exist")
        if rt["train_file"]:
            _need(
                Path(rt["train_file"]).exists(),
                f"retrain.train_file {rt['train_file']} does not exist",
            )


def _check_quota(sel: dict[str, Any]) -> None:
    """``select.min_per_route``: known routes, integers >= 0, in all <= max_per_round."""
    from workflows.learn.explore import ROUTES

    if sel["min_per_route"] is None:  # an empty YAML key: no quotas
        sel["min_per_route"] = {}
    quota = sel["min_per_route"]
    _need(
        isinstance(quota, dict),
        f"select.min_per_route must be a mapping route -> count (e.g. {{contact: 2}}), "
        f"not {quota!r}",
    )
    for route, n in quota.items():
        _need(
            route in ROUTES,
            f"select.min_per_route: unknown route {route!r}; known: {list(ROUTES)}",
        )
        _need(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0,
            f"select.min_per_route.{route} must be an integer >= 0, not {n!r}",
        )
    total, cap = sum(quota.values()), int(sel["max_per_round"])
    _need(
        total <= cap,
        f"select.min_per_route reserves {total} candidates per round in all, more than "
        f"select.max_per_round={cap}; lower the quotas or raise max_per_round",
    )


def _check_committee(committee: Any) -> None:
    if isinstance(committee, str):
        from pansim.committee import COMMITTEE_SUFFIX, committee_files

        _need(
            committee.endswith(COMMITTEE_SUFFIX),
            f"committee {committee!r} is not a committee name (<model>{COMMITTEE_SUFFIX}) "
            "nor a list of model files",
        )
        try:
            committee_files(committee)
        except (KeyError, ValueError) as err:
            raise LearnConfigError(f"unknown committee {committee!r}: {err}") from None
        return
    _need(
        isinstance(committee, list) and len(committee) >= 2,
        "committee must be a committee name or a list of at least 2 model files",
    )
    missing = [str(f) for f in committee if not Path(f).exists()]
    _need(not missing, f"committee model files not found: {missing}")


def _check_explore(cfg: dict[str, Any]) -> None:
    from workflows.md import ENSEMBLES

    ex = cfg["explore"]
    if ex["structure"] is not None:
        _need(Path(ex["structure"]).exists(), f"explore.structure {ex['structure']} does not exist")
    elif ex["bulk"] is None:
        from pansim.data.systems import STRUCTURES

        _need(
            cfg["system"] in STRUCTURES,
            f"explore needs a structure or bulk for system {cfg['system']!r} "
            f"(built-in cells: {list(STRUCTURES)})",
        )
    for k, run in enumerate(ex["md"]):
        _need(
            isinstance(run, dict) and "temperature_K" in run, f"explore.md[{k}] needs temperature_K"
        )
        ens = run.get("ensemble", "npt" if run.get("pressure_GPa") is not None else "langevin")
        _need(
            ens in ENSEMBLES,
            f"explore.md[{k}]: unknown ensemble {ens!r}; known: {sorted(ENSEMBLES)}",
        )
    n = len(ex["md"]) + len(ex["compress"]["volumes"]) + ex["contact"]["n"] + ex["vacancy"]["n"]
    _need(
        n > 0, "explore generates nothing: give md runs, compress.volumes, contact.n or vacancy.n"
    )
