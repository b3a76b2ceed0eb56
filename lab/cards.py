"""Model cards of trained runs: data, hyperparameters, training time, test metrics.

A card is written as JSON (for the registry) and Markdown (for people) next to
the model; :func:`ship` copies the shipped models (seed 0 of ``pan+pgs`` under
the system name, of ``baseline`` as ``<system>-baseline``) with their cards;
:func:`ship_decided` ships what a shipping decision (:mod:`lab.ship`) chose instead.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from lab.plan import Job, relative_path, status
from lab.ship import (
    RECIPE_SEP,
    TABLE_HEAD,
    ShipRuleError,
    architecture,
    baseline_twin,
    recipe_of,
    variant_rows,
)
from pansim.domain import DOMAIN_KEY, add_domain_to_file
from pansim.files import write_text_atomic
from pansim.model_io import read_model_file
from pansim.training.trainer import BEST_MODEL

ROOT = Path(__file__).resolve().parents[1]

#: variant shipped under the plain system name, and the suffix of the others
SHIPPED = {"pan+pgs": "", "baseline": "-baseline"}


def model_name(job: Job) -> str:
    """Registry name of a job's model: ``si``, ``si-baseline``, or ``si-pan-seed1``."""
    if job.seed == 0 and job.variant in SHIPPED:
        return f"{job.system}{SHIPPED[job.variant]}"
    return f"{job.system}-{job.variant}-seed{job.seed}"


#: backbone hyperparameters a card lists when the run's config has none (warm starts)
BACKBONE_KEYS = (
    "num_channels", "max_L", "max_ell", "correlation", "num_interactions", "num_bessel",
    "num_polynomial_cutoff", "radial_MLP",
)  # fmt: skip

#: training settings a card lists (besides the backbone's hyperparameters)
TRAINING_KEYS = (
    "energy_weight", "forces_weight", "stress_weight", "optimizer", "lr", "weight_decay",
    "scheduler", "min_lr", "ema_decay", "batch_size", "max_epochs", "clip_grad_norm",
    "dtype", "r_max", "atomic_energies", "seed",
)  # fmt: skip

#: reference level of each system's labels (data/README.md, docs/spec.md §2)
REFERENCE_LEVEL = {
    "si": "DFT: PBE, plane waves 500 eV, GPAW 22.8 (docs/spec.md §2.1)",
    "lif": "DFT: PBE, plane waves 700 eV, GPAW 22.8 (docs/spec.md §2.1)",
    "ag": "DFT: PBE, plane waves 450 eV, GPAW 22.8 (docs/spec.md §2.1)",
    "ethanol": "DFT: PBE/def2-SVP, PySCF 2.14, geometries from 500 K GFN2-xTB MD "
    "(docs/spec.md §2.2)",
    "malonaldehyde": "DFT: PBE/def2-SVP, PySCF 2.14, geometries from 500 K GFN2-xTB MD "
    "(docs/spec.md §2.2)",
}


def _count_frames(path: str | None) -> int | None:
    """Structures in an extended XYZ file (``None`` when it is not there)."""
    if not path or not Path(path).is_file():
        return None
    from ase.io import iread

    return sum(1 for _ in iread(path, index=":"))


def card(job: Job) -> dict[str, Any]:
    """The model card of a finished job (see the module docstring)."""
    summary = json.loads((job.out_dir / "summary.json").read_text())
    config = summary["config"]
    hp = config["hyperparameters"]
    if not hp and config.get("init_from"):
        # a warm start takes its architecture from the start file: read it off the model
        model_config = read_model_file(job.out_dir / BEST_MODEL)[0]
        hp = {k: model_config[k] for k in BACKBONE_KEYS if k in model_config}
    return {
        "name": model_name(job),
        "system": job.system,
        "variant": job.variant,
        "seed": job.seed,
        "backbone": (
            f"MACE, {hp.get('num_channels')} channels, max_L {hp.get('max_L')}, correlation "
            f"{hp.get('correlation')}, {hp.get('num_interactions')} interactions, r_max "
            f"{config['r_max']} A: a real MACE, sized to train on 2 CPU cores"
        ),
        "reference": REFERENCE_LEVEL.get(job.system, "see the data files' provenance"),
        "data": {k: config[k] for k in ("train_file", "valid_file", "test_file")},
        "data_sizes": {
            k: _count_frames(config[k]) for k in ("train_file", "valid_file", "test_file")
        },
        "data_sha256": summary["data_sha256"],
        "hyperparameters": hp,
        "training": {
            "epochs": summary["epochs"],
            "steps": summary["steps"],
            "best_epoch": summary["best_epoch"],
            "train_seconds": summary.get("train_seconds"),
            "processes": summary.get("world_size", 1),
            "stop_reason": summary["stop_reason"],
            "command": f"pansim train {relative_path(job.config)}",
            "init_from": config.get("init_from"),
            "settings": {k: config.get(k) for k in TRAINING_KEYS if k in config},
        },
        "test_metrics": summary.get("test"),
        "reproduce": f"pansim eval {model_name(job)} {config['test_file']}",
    }


def to_markdown(data: dict[str, Any]) -> str:
    """A card as Markdown."""
    t = data["training"]
    lines = [
        f"# {data['name']}",
        "",
        f"- system: {data['system']}; variant: `{data['variant']}`; seed {data['seed']}",
        f"- backbone: {data['backbone']}",
        f"- reference: {data.get('reference', '-')}",
        "- data: "
        + ", ".join(
            f"{k} `{v}` ({(data.get('data_sizes') or {}).get(k)} structures)"
            for k, v in data["data"].items()
        ),
        f"- training: {t['epochs']} epochs, {t['steps']} steps, best epoch {t['best_epoch']}, "
        f"{(t['train_seconds'] or 0) / 3600:.2f} h on {t['processes']} process(es) "
        f"({t['stop_reason']}); rebuild with `{t['command']}`",
        *(
            [
                f"- started from `{t['init_from']}` (a warm start: trained on from those "
                "weights, not from a random start; how that file was made is in the header "
                f"of `{t['command'].split()[-1]}`)"
            ]
            if t.get("init_from")
            else []
        ),
        f"- hyperparameters: `{json.dumps(data['hyperparameters'], sort_keys=True)}`",
        *(
            [f"- training settings: `{json.dumps(t['settings'], sort_keys=True)}`"]
            if t.get("settings")
            else []
        ),
        "",
        "| test set | MAE | RMSE |",
        "|---|---|---|",
    ]
    metrics = data["test_metrics"] or {}
    for key, unit in (("energy_per_atom", "meV/atom"), ("forces", "meV/A"), ("stress", "GPa")):
        value = metrics.get(key) or {}
        if value.get("mae") is not None:
            lines.append(f"| {key} ({unit}) | {value['mae']:.3f} | {value['rmse']:.3f} |")
    lines += ["", f"Reproduce: `{data['reproduce']}`", ""]
    if data.get("selection"):
        sel = data["selection"]
        lines += [
            "## Why this model serves this name",
            "",
            f"Shipping rule of issue 23 (`lab/ship.py`), decided by `{sel['command']}` "
            f"on the runs of `{sel['runs_dir']}`"
            + "".join(
                f" and `{d}` (as `<variant>@{t}`)" for t, d in (sel.get("recipes") or {}).items()
            )
            + f", seeds {sel['seeds']}: {sel['reason']}.",
            "",
            *TABLE_HEAD,
            *sel["rows"],
            "",
            "E in meV/atom, F in meV/A, S in GPa (MAE); chosen on the validation split only.",
            "",
        ]
    return "\n".join(lines)


def write_card(job: Job) -> tuple[Path, Path]:
    """Write ``model_card.json`` and ``model_card.md`` into the job's out_dir."""
    data = card(job)
    js, md = job.out_dir / "model_card.json", job.out_dir / "model_card.md"
    write_text_atomic(js, json.dumps(data, indent=1))
    write_text_atomic(md, to_markdown(data))
    return js, md


def ship(jobs: list[Job], dest: str | Path) -> list[Path]:
    """Copy the shipped models of finished jobs and their cards to ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written, entries = [], {}
    for job in jobs:
        if status(job) != "done" or job.seed != 0 or job.variant not in SHIPPED:
            continue
        name = model_name(job)
        js, md = write_card(job)
        for src, suffix in ((job.out_dir / BEST_MODEL, ".safetensors"), (js, ".json"), (md, ".md")):
            target = dest / f"{name}{suffix}"
            shutil.copyfile(src, target)
            written.append(target)
        entries[name] = registry_entry(job)
    if entries:
        written.append(merge_registry(dest / "registry.json", entries))
    return written


def registry_entry(job: Job) -> dict[str, Any]:
    """The :mod:`pansim.pretrained` registry entry of a shipped job's model."""
    name = model_name(job)
    entry = {"file": f"{name}.safetensors", "card": f"{name}.md", "system": job.system}
    entry["variant"] = job.variant
    if job.variant == "pan+pgs":
        entry["baseline"] = f"{job.system}{SHIPPED['baseline']}"
    return entry


def merge_registry(path: Path, entries: dict[str, dict[str, Any]]) -> Path:
    """Add or replace ``entries`` in a ``registry.json`` (other entries and flags kept).

    A key given as None is removed from the entry (e.g. ``recipe`` when a name moves back
    to a model of the main recipe).
    """
    registry = json.loads(path.read_text()) if path.exists() else {}
    for name, entry in entries.items():
        merged = {**registry.get(name, {}), **entry}
        registry[name] = {k: v for k, v in merged.items() if v is not None}
    return write_text_atomic(path, json.dumps(registry, indent=1, sort_keys=True) + "\n")


def shipped_name(system: str, variant: str) -> str:
    """``si-pan`` for ``pan``; ``si-pan+pgs-warmstart`` for ``pan+pgs@warmstart``."""
    return f"{system}-{variant.replace(RECIPE_SEP, '-')}"


def ship_decided(
    decision: dict[str, Any],
    jobs: list[Job],
    dest: str | Path,
    recipes: dict[str, list[Job]] | None = None,
    previous_tag: str | None = None,
) -> list[Path]:
    """Ship one system as ``decision`` (:func:`lab.ship.choose`) says, with cards.

    - ``<system>-baseline``: seed 0 of the baseline twin (the decision's ``baseline``);
    - ``<system>-<variant>``: seed 0 of every other finished variant of ``jobs``
      (explicit names);
    - runs of a second recipe (``recipes``: tag -> its jobs, variants named
      ``<variant>@<tag>`` in the decision) ship only when served, as
      ``<system>-<variant>-<tag>``;
    - ``<system>``: the served variant's file (an entry of the registry, no copy),
      with a card that gives the rule, the table and the reason, and
      ``<system>-baseline`` as its baseline (the same file when the baseline is served).

    A stale ``<system>.safetensors`` (from a time the plain name had its own file) is
    removed so that no file is left that no entry names.

    Explicit names of an earlier decision that this one does not ship again keep the
    twin they were trained beside: when ``<system>-baseline`` moves to another training
    run, the previous one is kept as ``<system>-baseline-<previous_tag>`` and those names
    point to it (and carry ``recipe: previous_tag``). Without ``previous_tag`` such a
    move is refused (ShipRuleError naming the entries), never done silently.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    system, served = decision["system"], decision["served"]
    twin = baseline_twin(decision)

    def finished(group: list[Job], tag: str = "") -> dict[str, Job]:
        suffix = f"{RECIPE_SEP}{tag}" if tag else ""
        return {
            j.variant + suffix: j
            for j in group
            if j.system == system and j.seed == 0 and status(j) == "done"
        }

    by_variant = finished(jobs)
    tagged: dict[str, Job] = {}
    for tag, group in (recipes or {}).items():
        tagged.update(finished(group, tag))
    every = {**by_variant, **tagged}
    if served not in every or twin not in every:
        raise ShipRuleError(
            f"{system}: seed 0 of {served!r} and of the baseline twin {twin!r} must be "
            "finished to ship"
        )
    shipping = {v: j for v, j in by_variant.items() if architecture(v) != "baseline"}
    shipping[twin] = every[twin]
    shipping[served] = every[served]
    names = {f"{system}-baseline" if v == twin else shipped_name(system, v) for v in shipping}
    keep = _previous_twin(system, dest, names | {system}, every[twin], previous_tag)
    written: list[Path] = []
    entries: dict[str, dict[str, Any]] = {}
    files: dict[str, str] = {}
    for variant, job in sorted(shipping.items()):
        name = f"{system}-baseline" if variant == twin else shipped_name(system, variant)
        data = _named_card(card(job), name)
        written += _write_shipped(job, name, data, dest)
        files[variant] = f"{name}.safetensors"
        entries[name] = {"file": files[variant], "card": f"{name}.md", "system": system}
        entries[name]["variant"] = architecture(variant)
        entries[name]["recipe"] = recipe_of(variant)
        if variant != twin:
            entries[name]["baseline"] = f"{system}-baseline"
    job = every[served]
    data = {**_named_card(card(job), system), "selection": _selection(decision)}
    for suffix, text in ((".json", json.dumps(data, indent=1)), (".md", to_markdown(data))):
        written.append(write_text_atomic(dest / f"{system}{suffix}", text))
    entries[system] = {"file": files[served], "card": f"{system}.md", "system": system}
    # the baseline twin, also when the name serves the baseline architecture (then the
    # same file: pansim validate sees that and evaluates it once)
    entries[system].update(variant=architecture(served), baseline=f"{system}-baseline")
    entries[system]["recipe"] = recipe_of(served)
    stale = dest / f"{system}.safetensors"
    if stale.exists():
        stale.unlink()
    written.append(merge_registry(dest / "registry.json", entries))
    if keep is not None:
        written += _keep_previous_twin(system, dest, keep)
    return written


def _previous_twin(
    system: str, dest: Path, shipping: set[str], twin: Job, previous_tag: str | None
) -> dict[str, Any] | None:
    """What to keep of the current ``<system>-baseline`` before it is replaced.

    None when no explicit name outside ``shipping`` uses it as its baseline or when the
    twin stays the same training run; else the old card, file bytes and the names that
    keep it (ShipRuleError without ``previous_tag``). Reads only.
    """
    registry_path, name = dest / "registry.json", f"{system}-baseline"
    registry = json.loads(registry_path.read_text()) if registry_path.exists() else {}
    left = sorted(
        n for n, e in registry.items()
        if e.get("system") == system and n not in shipping and e.get("baseline") == name
    )  # fmt: skip
    card_path = dest / f"{name}.json"
    if not left or name not in registry or not card_path.exists():
        return None
    old_card = json.loads(card_path.read_text())
    if old_card["training"].get("command") == card(twin)["training"].get("command"):
        return None  # the same training run: the twin does not move
    if not previous_tag:
        raise ShipRuleError(
            f"{system}: {name} moves to another training run, but {', '.join(left)} (not "
            f"shipped by this decision) were trained beside the previous one; name that "
            f"previous recipe (--keep-previous-as TAG) to keep it as {name}-TAG for them"
        )
    if RECIPE_SEP in previous_tag or "/" in previous_tag:
        raise ShipRuleError(f"previous recipe tag {previous_tag!r}: no '@' or '/' allowed")
    return {"name": f"{name}-{previous_tag}", "tag": previous_tag, "card": old_card,
            "bytes": (dest / registry[name]["file"]).read_bytes(), "left": left,
            "recipes": {n: registry[n].get("recipe") for n in left}}  # fmt: skip


def _named_card(data: dict[str, Any], name: str) -> dict[str, Any]:
    """A copy of a model card served under ``name``, its reproduce line naming it."""
    reproduce = f"pansim eval {name} {data['data']['test_file']}"
    return {**data, "name": name, "reproduce": reproduce}


def _keep_previous_twin(system: str, dest: Path, keep: dict[str, Any]) -> list[Path]:
    """Write the previous twin as ``keep["name"]`` and point the names left to it."""
    kept, tag = keep["name"], keep["tag"]
    target = dest / f"{kept}.safetensors"
    write_text_atomic(target, keep["bytes"])  # bytes: written in binary mode
    data = _named_card(keep["card"], kept)
    written = [
        target,
        write_text_atomic(dest / f"{kept}.json", json.dumps(data, indent=1)),
        write_text_atomic(dest / f"{kept}.md", to_markdown(data)),
    ]
    entries = {kept: {"file": target.name, "card": f"{kept}.md", "system": system,
                      "variant": "baseline", "recipe": tag}}  # fmt: skip
    for n in keep["left"]:
        entries[n] = {"baseline": kept, "recipe": keep["recipes"][n] or tag}
    written.append(merge_registry(dest / "registry.json", entries))
    return written


def _write_shipped(job: Job, name: str, data: dict[str, Any], dest: Path) -> list[Path]:
    """Copy a run's best model as ``name`` and write its card beside it."""
    target = dest / f"{name}.safetensors"
    shutil.copyfile(job.out_dir / BEST_MODEL, target)
    if DOMAIN_KEY not in read_model_file(target)[1]:
        # the training domain, for the calculator's out-of-domain warnings (pansim.domain)
        add_domain_to_file(target, ROOT / data["data"]["train_file"])
    js = write_text_atomic(dest / f"{name}.json", json.dumps(data, indent=1))
    md = write_text_atomic(dest / f"{name}.md", to_markdown(data))
    return [target, js, md]


def _selection(decision: dict[str, Any]) -> dict[str, Any]:
    """The part of a decision a card shows: rule, seeds, reason, one row per variant."""
    keys = ("command", "runs_dir", "recipes", "seeds", "reason", "served", "baseline")
    return {**{k: decision.get(k) for k in keys}, "rows": variant_rows(decision)}
