"""The resumable active-learning loop behind ``pansim learn``.

State: ``<work_dir>/state.json`` (written atomically after every stage) holds the
committee in force, the current round and stage, and one record per round. Files
of round ``r`` live in ``<work_dir>/round-<r>/``: ``md-*/`` (committee MD, with
checkpoints), ``candidates.extxyz`` (every explored structure with its
disagreement), ``train.extxyz``/``valid.extxyz`` and ``models/member-*/`` (retrain,
with checkpoints). Labels go to ``<labels_dir>/manifest.json`` (one entry per
configuration, the labelling runner's format) and its extended XYZ exports.

Killing the process at any point loses no finished label (the manifest is saved
after each) and no finished stage (the state is saved after each); a rerun
continues where it stopped. Logs, rewritten from the state after every round:
``<work_dir>/rounds.jsonl`` (one JSON line per round) and ``rounds.md`` (a table).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.io import read
from tqdm import tqdm

import pansim
from pansim.files import write_json_atomic, write_text_atomic
from workflows.learn.config import STAGES, LearnConfigError

STATE_FORMAT = "pansim-learn-1"
#: the label files written next to the labels' manifest
SPLITS = ("train", "val", "test")


# ----------------------------------------------------------------------------- state
def load_state(cfg: dict[str, Any]) -> dict[str, Any]:
    """The saved state of ``cfg``'s work_dir, or a fresh one (round 1, explore)."""
    path = Path(cfg["work_dir"]) / "state.json"
    if path.exists():
        state = json.loads(path.read_text())
        if state.get("format") != STATE_FORMAT:
            raise LearnConfigError(f"{path} is not a {STATE_FORMAT} state file")
        return state
    committee = cfg["committee"]
    if isinstance(committee, str):
        from pansim.committee import committee_files

        committee = committee_files(committee)
    committee = [_relative(f) for f in committee]
    return {
        "format": STATE_FORMAT,
        "system": cfg["system"],
        "committee": committee,
        "round": 1,
        "stage": "explore",
        "rounds": [],
        "stopped": None,
    }


def _relative(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it (portable state)."""
    p = Path(path).absolute()
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def save_state(cfg: dict[str, Any], state: dict[str, Any]) -> None:
    """Write the state and the round logs (all atomically)."""
    wd = Path(cfg["work_dir"])
    write_json_atomic(wd / "state.json", state, indent=1)
    finished = [r for r in state["rounds"] if r.get("status")]
    write_text_atomic(
        wd / "rounds.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in finished)
    )
    shown = [
        r if r.get("status") else {**r, "status": f"in progress ({state['stage']})"}
        for r in state["rounds"]
    ]
    write_text_atomic(wd / "rounds.md", rounds_table(shown, state.get("stopped")))


def rounds_table(rounds: list[dict[str, Any]], stopped: str | None = None) -> str:
    """Markdown table of the rounds."""
    head = (
        "| round | candidates | max disagreement (eV/A) | selected | labelled | failed | "
        "retrain | val E MAE (meV/atom) | val F RMSE (meV/A) | status |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for r in rounds:
        v = r.get("validation") or {}
        e = v.get("energy_per_atom", {}).get("mae")
        f = v.get("forces", {}).get("rmse")
        rows.append(
            f"| {r['round']} | {r.get('candidates', '')} | "
            f"{r.get('max_disagreement', float('nan')):.3f} | {r.get('selected', '')}"
            f"{_by_quota(r)} | "
            f"{r.get('labelled', '')}{_pending(r)} | {r.get('failed', '')} | "
            f"{r.get('retrain', '')} | "
            f"{'' if e is None else f'{e:.1f}'} | {'' if f is None else f'{f:.0f}'} | "
            f"{r.get('status', '')} |"
        )
    tail = f"\nStopped: {stopped}\n" if stopped else ""
    return head + "\n".join(rows) + "\n" + tail


def _by_quota(rec: dict[str, Any]) -> str:
    """`` (2 by quota: contact 2)`` when route quotas picked some of the round's selection."""
    picked = {k: n for k, n in (rec.get("selected_by_quota") or {}).items() if n}
    if not picked:
        return ""
    routes = ", ".join(f"{k} {n}" for k, n in picked.items())
    return f" ({sum(picked.values())} by quota: {routes})"


def _pending(rec: dict[str, Any]) -> str:
    return f" ({rec['pending']} pending)" if rec.get("pending") else ""


def _record(state: dict[str, Any]) -> dict[str, Any]:
    """The record of the current round (created on first use)."""
    r = state["round"]
    for rec in state["rounds"]:
        if rec["round"] == r:
            return rec
    rec = {"round": r, "committee": list(state["committee"])}
    state["rounds"].append(rec)
    return rec


def round_dir(cfg: dict[str, Any], r: int) -> Path:
    """``<work_dir>/round-<r>``."""
    return Path(cfg["work_dir"]) / f"round-{r:03d}"


_CALCS: dict[tuple, Any] = {}


def committee_calc(cfg: dict[str, Any], files: list[str]):
    """A committee ``PANCalculator`` of ``files`` (malloc left as it is), cached per process.

    The cache key holds each file's size and modification time, so a rewritten
    model file is loaded again.
    """
    from pansim.calculator import PANCalculator

    key = (cfg["device"],) + tuple((str(Path(f).resolve()), *_stamp(f)) for f in files)
    if key not in _CALCS:
        _CALCS.clear()  # one committee in force at a time
        _CALCS[key] = PANCalculator(model=list(files), device=cfg["device"], keep_memory=False)
    calc = _CALCS[key]
    calc.reset()
    return calc


def _stamp(path: str) -> tuple[int, int]:
    st = Path(path).stat()
    return st.st_size, st.st_mtime_ns


# ----------------------------------------------------------------------------- stages
def stage_explore(cfg: dict[str, Any], state: dict[str, Any], rec: dict[str, Any]) -> None:
    """Explore with the committee in force; candidates.extxyz with their disagreement."""
    from ase.io import write

    from workflows.learn.explore import explore, score

    out = round_dir(cfg, state["round"])
    calc = committee_calc(cfg, state["committee"])
    cands = explore(cfg, calc, state["round"], out)
    score(calc, cands)
    from pansim.files import atomic_path

    with atomic_path(out / "candidates.extxyz") as tmp:
        write(str(tmp), cands, format="extxyz")
    spread = np.array([a.info["forces_std_max"] for a in cands])
    rec.update(
        candidates=len(cands),
        max_disagreement=float(spread.max()),
        disagreement_quantiles={q: float(np.quantile(spread, q / 100)) for q in (10, 50, 90)},
        disagreement_by_route=_by_route(cands),
    )


def _by_route(cands: list[Atoms]) -> dict[str, float]:
    """Largest disagreement (eV/A) per exploration route."""
    out: dict[str, float] = {}
    for a in cands:
        route = a.info["route"]
        out[route] = max(out.get(route, 0.0), float(a.info["forces_std_max"]))
    return out


def labels_manifest(cfg: dict[str, Any]) -> Path:
    """``<labels_dir>/manifest.json``."""
    return Path(cfg["labels_dir"]) / "manifest.json"


def _labels_used(cfg: dict[str, Any], before_round: int | None = None) -> int:
    """Labels queued so far (done, failed or pending), optionally only before a round."""
    from pansim.data.manifest import Manifest

    path = labels_manifest(cfg)
    if not path.exists():
        return 0
    rounds = [e["provenance"].get("round", 0) for e in Manifest.load(path).entries.values()]
    return sum(before_round is None or r < before_round for r in rounds)


def stage_select(cfg: dict[str, Any], state: dict[str, Any], rec: dict[str, Any]) -> str | None:
    """Select and queue this round's labels; returns a stop reason when the loop is done."""
    from workflows.learn.select import select_with_quota

    cands = read(str(round_dir(cfg, state["round"]) / "candidates.extxyz"), ":")
    sel, stop = cfg["select"], cfg["stop"]
    threshold = float(sel["threshold"])
    spread = np.array([a.info["forces_std_max"] for a in cands])
    n_above = int((spread > threshold).sum())
    rec["above_threshold"] = n_above
    if state["round"] == 1:
        _check_threshold(threshold, spread, n_above)
    elif spread.max() < float(stop["threshold"]):
        return (
            f"converged: max disagreement {spread.max():.3f} eV/A < {stop['threshold']} eV/A "
            f"on a fresh exploration (round {state['round']})"
        )
    # this round's own entries do not count: a select rerun after a kill queues the same ones
    remaining = int(stop["label_budget"]) - _labels_used(cfg, before_round=state["round"])
    if remaining <= 0:
        return f"label budget of {stop['label_budget']} used"
    cap = min(int(sel["max_per_round"]), remaining)
    chosen, by_quota = select_with_quota(
        cands, threshold, cap, float(sel["r_max"]), int(sel["bins"]), sel.get("min_per_route")
    )
    _queue(cfg, state, [cands[i] for i in chosen])
    rec["selected"] = len(chosen)
    rec["selected_by_quota"] = by_quota  # route -> picked by select.min_per_route ({}: none)
    return None


def _check_threshold(threshold: float, spread: np.ndarray, n_above: int) -> None:
    """A first-round threshold must separate the candidates (bad input otherwise)."""
    q = ", ".join(f"{p}%: {np.quantile(spread, p / 100):.3f}" for p in (0, 10, 50, 90, 100))
    if n_above == 0:
        raise LearnConfigError(
            f"select.threshold {threshold} eV/A selects nothing: the committee's force "
            f"disagreement on the {spread.size} first-round candidates is at most "
            f"{spread.max():.3f} eV/A (quantiles {q}); lower the threshold"
        )
    if n_above == spread.size and spread.size > 1:
        raise LearnConfigError(
            f"select.threshold {threshold} eV/A selects every one of the {spread.size} "
            f"first-round candidates (disagreement quantiles {q}, eV/A); raise it so that "
            "it separates them"
        )


def make_job(cfg: dict[str, Any], atoms: Atoms) -> dict:
    """The labeller's job for ``atoms`` with the system's reference settings."""
    from pansim.data import labelers

    if cfg["labeller"] == "emt":
        return labelers.emt_job(atoms, **cfg["labeller_options"])
    if cfg["labeller"] == "pyscf":
        from pansim.data.datasets import get_system

        return get_system(cfg["system"]).make_job(atoms)
    from pansim.data.settings import kmesh
    from pansim.data.systems import get_system
    from workflows.learn.explore import base_cell

    settings = get_system(cfg["system"]).dft
    kpts = kmesh(base_cell(cfg).cell.array, settings.dk)  # the unstrained family cell's mesh
    return labelers.crystal_job(atoms, settings, kpts, **cfg["labeller_options"])


def _queue(cfg: dict[str, Any], state: dict[str, Any], chosen: list[Atoms]) -> None:
    """Add the chosen structures to the labels' manifest (idempotent: same keys, same jobs)."""
    from pansim.data.labelers import job_hash
    from pansim.data.manifest import Manifest

    r, system = state["round"], cfg["system"]
    meta = {"system": system, "kind": "active", "labeller": cfg["labeller"]}
    with Manifest.update(labels_manifest(cfg), meta) as m:
        for k, atoms in enumerate(chosen):
            key = f"{system}-al-r{r:03d}-{k:03d}"
            job = make_job(cfg, atoms)
            prov = {
                "system": system,
                "config_id": key,
                "route": atoms.info["route"],
                "route_params": atoms.info["route_params"],
                "round": r,
                "forces_std_max": float(atoms.info["forces_std_max"]),
                "energy_std": float(atoms.info["energy_std"]),
                "committee": [str(f) for f in state["committee"]],
                "sampler": "pansim-learn",
                "sampled_by": f"pansim {pansim.__version__}",
            }
            m.add(key, job, prov, job_hash(job))


def stage_label(
    cfg: dict[str, Any], state: dict[str, Any], rec: dict[str, Any], progress: bool, log
) -> None:
    """Label the queued configurations (resumable runner); export the label files."""
    from pansim.data.runner import Queue, label

    path = labels_manifest(cfg)

    def after() -> None:  # after every label: exports, counts and logs up to date
        export_labels(cfg)
        count_labels(cfg, state, rec)
        save_state(cfg, state)

    if path.exists():
        t0 = time.time()
        label(
            [Queue("labels", path, after=after)],
            lock_dir=path.parent,
            scratch=Path(cfg["work_dir"]) / "scratch",
            timeout=float(cfg["label_timeout_s"]),
            progress=progress,
            log=log,
        )
        rec["label_wall_seconds"] = round(rec.get("label_wall_seconds", 0.0) + time.time() - t0, 1)
        export_labels(cfg)
    count_labels(cfg, state, rec)


def count_labels(cfg: dict[str, Any], state: dict[str, Any], rec: dict[str, Any]) -> None:
    """Labelled / failed / pending counts of the current round into its record."""
    from pansim.data.manifest import Manifest

    path = labels_manifest(cfg)
    tag = f"-al-r{state['round']:03d}-"
    entries = {}
    if path.exists():
        entries = {k: e for k, e in Manifest.load(path).entries.items() if tag in k}
    done = [e for e in entries.values() if e["status"] == "done"]
    rec["labelled"] = len(done)
    rec["failed"] = sum(e["status"] == "failed" for e in entries.values())
    rec["pending"] = sum(e["status"] == "pending" for e in entries.values())
    rec["failures"] = {
        k: e.get("error", "")[:300] for k, e in entries.items() if e["status"] == "failed"
    }
    # worker seconds per label: CPU time where the worker reports it (PySCF), else wall time
    rec["label_worker_seconds"] = round(
        sum(float(e["result"].get("cpu_seconds", e["result"].get("seconds", 0.0))) for e in done), 1
    )


def refresh_status(cfg: dict[str, Any]) -> dict[str, Any]:
    """Bring the current round's label counts and the logs up to date; runs nothing."""
    state = load_state(cfg)
    if state["rounds"] and state["stage"] in ("label", "retrain") and state["stopped"] is None:
        count_labels(cfg, state, _record(state))
        if labels_manifest(cfg).exists():
            export_labels(cfg)
    save_state(cfg, state)
    return state


def export_labels(cfg: dict[str, Any]) -> dict[str, int]:
    """Rewrite ``all/train/val/test.extxyz`` of the labels from their manifest (atomically).

    Splits follow the data sets' stratified rule (:func:`pansim.data.datasets.split_of`:
    8/1/1 per 10 consecutive labels); ``test.extxyz`` is the held-out "active" split.
    """
    from pansim.data.datasets import _extxyz_text, labelled_atoms
    from pansim.data.manifest import Manifest

    m = Manifest.load(labels_manifest(cfg))
    frames = [labelled_atoms(m.entries[k], k) for k in m.done()]
    folder = Path(cfg["labels_dir"])
    write_text_atomic(folder / "all.extxyz", _extxyz_text(frames))
    counts = {"all": len(frames)}
    for split in SPLITS:
        part = [a for a in frames if a.info["split"] == split]
        write_text_atomic(folder / f"{split}.extxyz", _extxyz_text(part))
        counts[split] = len(part)
    return counts


def read_frames(path: str | Path | None) -> list[Atoms]:
    """The structures of an extended XYZ file; none for a missing or empty file."""
    if not path or not Path(path).exists() or Path(path).stat().st_size == 0:
        return []
    return read(str(path), ":")


def stage_retrain(
    cfg: dict[str, Any], state: dict[str, Any], rec: dict[str, Any], progress: bool
) -> None:
    """Retrain every member (warm or from scratch); NaN keeps the previous committee."""
    from ase.data import chemical_symbols
    from ase.io import write

    from pansim.files import atomic_path
    from pansim.training.config import load_config as load_train_config
    from pansim.training.trainer import BEST_MODEL, CHECKPOINT, TrainingDiverged, train

    rt = cfg["retrain"]
    if rt["mode"] == "none":
        rec["retrain"] = "skipped"
        return
    out = round_dir(cfg, state["round"])
    labels = Path(cfg["labels_dir"])
    train_frames = read_frames(rt["train_file"]) + read_frames(labels / "train.extxyz")
    valid_frames = read_frames(cfg["validation_file"]) + read_frames(labels / "val.extxyz")
    if not train_frames:
        rec["retrain"] = "skipped: no training labels"
        return
    for name, frames in (("train", train_frames), ("valid", valid_frames)):
        with atomic_path(out / f"{name}.extxyz") as tmp:
            write(str(tmp), frames, format="extxyz")
    calc = committee_calc(cfg, state["committee"])
    elements = [chemical_symbols[z] for z in calc.atomic_numbers]
    previous = list(state["committee"])
    models = []
    for k, prev in enumerate(previous):
        member = out / "models" / f"member-{k}"
        overrides = {
            "train_file": str(out / "train.extxyz"),
            "valid_file": str(out / "valid.extxyz"),
            "test_file": None,
            "out_dir": str(member),
            "max_epochs": int(rt["max_epochs"]),
            "elements": elements,
            "progress": progress,
            "device": cfg["device"],
        }
        tc = load_train_config(rt["config"], overrides)
        tc.seed = int(tc.seed) + k + 1000 * state["round"]
        if not (member / "summary.json").exists():
            builder = _warm_builder(prev) if rt["mode"] == "warm" else None
            try:
                train(tc, resume=(member / CHECKPOINT).exists(), builder=builder)
            except TrainingDiverged as err:
                rec["retrain"] = f"diverged (member {k}: {err}); previous models kept"
                return
        models.append(str(member / BEST_MODEL))
    state["committee"] = models
    rec["retrain"] = rt["mode"]


def _warm_builder(path: str) -> Callable[..., Any]:
    """A model builder that returns the previous member's weights (trainable)."""

    def build(**_: Any):
        from pansim.model_io import load_model

        model = load_model(path).train()
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    return build


def validation_errors(cfg: dict[str, Any], files: list[str]) -> dict[str, Any]:
    """Errors of the committee mean on the fixed validation set, and its mean disagreement."""
    from pansim.training.data import load_dataset
    from pansim.training.evaluate import metrics

    calc = committee_calc(cfg, files)
    keys = ("REF_energy", "REF_forces", "REF_stress")
    samples = load_dataset(cfg["validation_file"], keys, calc.atomic_numbers, calc.r_max)
    frames = read(cfg["validation_file"], ":")
    preds = calc.batch_evaluate(frames, ("energy", "forces"), batch_size=8)
    for p in preds:
        p["stress"] = None
    for s in samples:
        s.stress = None
    out = metrics(samples, preds)
    out["mean_forces_std"] = float(np.mean([p["forces_std_max"] for p in preds]))
    return {k: out[k] for k in ("energy_per_atom", "forces", "n_structures", "mean_forces_std")}


# ----------------------------------------------------------------------------- loop
def run(
    cfg: dict[str, Any],
    stop_after: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run (or continue) the loop of ``cfg`` until a stopping rule holds.

    Parameters
    ----------
    stop_after : {"explore", "select", "label", "retrain"}, optional
        Return after this stage of the current round has finished (state saved);
        a later call continues with the next stage.

    Returns
    -------
    dict
        The state (``stopped`` holds the reason once the loop is finished).
    """
    if stop_after is not None and stop_after not in STAGES:
        raise LearnConfigError(f"stop_after {stop_after!r} is not one of {list(STAGES)}")
    write = log or tqdm.write
    state = load_state(cfg)
    Path(cfg["work_dir"]).mkdir(parents=True, exist_ok=True)
    if "validation_initial" not in state:
        state["validation_initial"] = validation_errors(cfg, state["committee"])
        save_state(cfg, state)
    while state["stopped"] is None:
        rec = _record(state)
        bar = tqdm(total=len(STAGES), initial=STAGES.index(state["stage"]), disable=not progress,
                   desc=f"round {state['round']}", unit="stage")  # fmt: skip
        stage = state["stage"]
        write(f"round {state['round']}: {stage}")
        if stage == "explore":
            stage_explore(cfg, state, rec)
        elif stage == "select":
            reason = stage_select(cfg, state, rec)
            if reason is not None:
                rec["status"] = "stopped before labelling"
                state["stopped"] = reason
                save_state(cfg, state)
                write(f"stopped: {reason}")
                break
        elif stage == "label":
            stage_label(cfg, state, rec, progress, write)
        elif stage == "retrain":
            stage_retrain(cfg, state, rec, progress)
            rec["validation"] = validation_errors(cfg, state["committee"])
            rec["models"] = list(state["committee"])
            rec["status"] = "done"
        bar.update(1)
        bar.close()
        _advance(cfg, state)
        save_state(cfg, state)
        if stage == stop_after:
            write(f"stopped after {stage} (round {rec['round']}); rerun to continue")
            break
    return state


def _advance(cfg: dict[str, Any], state: dict[str, Any]) -> None:
    """Next stage, next round, or a stop reason."""
    i = STAGES.index(state["stage"])
    if i + 1 < len(STAGES):
        state["stage"] = STAGES[i + 1]
        return
    stop = cfg["stop"]
    used = _labels_used(cfg)
    if used >= int(stop["label_budget"]):
        state["stopped"] = f"label budget of {stop['label_budget']} used ({used} labels)"
    elif state["round"] >= int(stop["max_rounds"]):
        state["stopped"] = f"max_rounds={stop['max_rounds']} done"
    else:
        state["round"] += 1
        state["stage"] = "explore"
