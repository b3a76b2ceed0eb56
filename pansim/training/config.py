"""The training configuration: one flat dataclass, read from YAML, overridden from the command line.

Every key is validated: an unknown key is an error that names it and suggests the
closest known key. Model hyperparameters go under ``hyperparameters`` (passed to
:func:`pansim.build_model` unchanged); a command-line override of one of them is
written ``--hyperparameters.num_channels 32``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

#: keys that control one run and may change on ``--resume`` (not part of the fingerprint)
#: settings added after the first checkpoints were written; at their defaults they
#: leave the fingerprint as it was, so those checkpoints still resume
LATER_KEYS = frozenset(
    {
        "c_max_margin",
        "pgs_calibrate",
        "pgs_calibrate_spread",
        "module_lr_scale",
        "lr_warmup_steps",
        "pan_curvature_weight",
        # fine-tuning (pansim.training.finetune)
        "init_from",
        "freeze",
        "replay_file",
        "replay_weight",
    }
)

RUN_CONTROL_KEYS = frozenset(
    {"out_dir", "max_steps", "checkpoint_every", "progress", "device", "test_file"}
)


#: string values of ``atomic_energies``
SOURCES_OF_E0 = ("fit", "source")


class ConfigError(ValueError):
    """A training configuration that cannot be used (the message says why)."""


@dataclasses.dataclass
class TrainConfig:
    """All settings of one training run (units: eV, Angstrom).

    ``max_epochs`` fixes the schedule horizon; ``max_steps`` only stops this run
    early (e.g. to resume later) and never changes the schedule.
    """

    train_file: str = ""
    valid_file: str = ""
    test_file: str | None = None
    energy_key: str = "REF_energy"
    forces_key: str = "REF_forces"
    stress_key: str = "REF_stress"
    elements: list[str] | None = None
    backbone: str = "mace"
    variant: str = "pan+pgs"
    r_max: float = 5.0
    hyperparameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    atomic_energies: str | dict[str, float] = "fit"
    c_max_percentile: float = 99.0
    c_max_margin: float = 1.0
    pgs_calibrate: bool = False
    pgs_calibrate_spread: float = 3.0
    energy_weight: float = 1.0
    forces_weight: float = 10.0
    stress_weight: float = 1.0
    optimizer: str = "adamw"
    lr: float = 1e-2
    #: learning rate of the added PAN / PGS parameters, as a multiple of ``lr``
    module_lr_scale: float = 1.0
    #: optimizer steps over which every learning rate ramps linearly up to its scheduled
    #: value (step k of the run uses (k + 1) / lr_warmup_steps of it; 0 = no warm-up).
    #: A fresh Adam state moves every parameter by about lr on its first step, which
    #: throws a converged (warm-started) model far off; the ramp avoids that
    lr_warmup_steps: int = 0
    #: weight of the PAN curvature penalty (mean squared d2s/dc2 of every PAN layer, added
    #: to the training loss; 0 = off). See PANPooling.curvature and docs/science.md
    pan_curvature_weight: float = 0.0
    #: fine-tuning (see pansim.training.finetune): start from this pansim model file
    init_from: str | None = None
    #: none | backbone | interactions:N
    freeze: str = "none"
    #: structures labelled by the source model, mixed into every step at replay_weight
    replay_file: str | None = None
    replay_weight: float = 1.0
    weight_decay: float = 5e-7
    scheduler: str = "plateau"
    scheduler_patience: int = 5
    scheduler_factor: float = 0.8
    min_lr: float = 0.0
    ema_decay: float | None = 0.99
    batch_size: int = 4
    valid_batch_size: int = 16
    max_epochs: int = 100
    max_steps: int | None = None
    early_stopping_patience: int | None = 20
    clip_grad_norm: float | None = 10.0
    dtype: str = "float64"
    seed: int = 0
    checkpoint_every: int = 100
    out_dir: str = "runs/train"
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, _coerce(field, getattr(self, field.name)))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values that cannot work."""
        _require(self.train_file, "train_file is required")
        _require(self.valid_file, "valid_file is required")
        _choice("optimizer", self.optimizer, ("adam", "adamw"))
        _choice("scheduler", self.scheduler, ("plateau", "cosine", "none"))
        _choice("dtype", self.dtype, ("float32", "float64"))
        from pansim.backbones import VARIANTS

        _choice("variant", self.variant, VARIANTS)
        for name in ("batch_size", "valid_batch_size", "max_epochs", "checkpoint_every"):
            _require(getattr(self, name) >= 1, f"{name} must be >= 1")
        _require(self.lr > 0, "lr must be > 0")
        _require(self.module_lr_scale > 0, "module_lr_scale must be > 0")
        _require(self.lr_warmup_steps >= 0, "lr_warmup_steps must be >= 0")
        _require(self.pan_curvature_weight >= 0, "pan_curvature_weight must be >= 0")
        _require(self.r_max > 0, "r_max must be > 0")
        _require(self.c_max_margin > 0, "c_max_margin must be > 0")
        _require(self.pgs_calibrate_spread > 0, "pgs_calibrate_spread must be > 0")
        _require(0 < self.c_max_percentile <= 100, "c_max_percentile must be in (0, 100]")
        if self.ema_decay is not None:
            _require(0.0 < self.ema_decay < 1.0, "ema_decay must be in (0, 1) or null")
        if not (isinstance(self.atomic_energies, dict) or self.atomic_energies in SOURCES_OF_E0):
            raise ConfigError(
                "atomic_energies must be 'fit', 'source' (with init_from) or a mapping "
                "element -> eV"
            )
        from pansim.training.finetune import check_freeze

        check_freeze(self.freeze)
        _require(self.replay_weight >= 0, "replay_weight must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a plain (JSON/YAML-serialisable) dict."""
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """sha256 of every setting that changes the training trajectory.

        ``max_epochs`` counts only with the cosine schedule (its horizon): a
        plateau or constant schedule may be resumed with more epochs.
        """
        skip = RUN_CONTROL_KEYS | ({"max_epochs"} if self.scheduler != "cosine" else set())
        data = {k: v for k, v in self.to_dict().items() if k not in skip}
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for key in LATER_KEYS:  # checkpoints from before these keys lack them
            if data.get(key) == defaults[key]:
                del data[key]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


_SCALARS = {"float": float, "int": int}


def _coerce(field: dataclasses.Field, value: Any) -> Any:
    """Numbers written as strings (YAML reads ``1e-3`` as text) become numbers."""
    base = str(field.type).replace(" | None", "")
    if value is None or base not in _SCALARS and base != "bool":
        return value
    if base == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{field.name} must be true or false, got {value!r}")
    try:
        return _SCALARS[base](value) if base == "float" else _to_int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{field.name} must be a number ({base}), got {value!r}") from None


def _to_int(value: Any) -> int:
    number = float(value)
    if not number.is_integer() or isinstance(value, bool):
        raise ValueError(value)
    return int(number)


def _require(condition: Any, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {list(allowed)}")


def known_keys() -> list[str]:
    """Names of all configuration keys."""
    return [f.name for f in dataclasses.fields(TrainConfig)]


def check_keys(keys: list[str], where: str = "config") -> None:
    """Raise :class:`ConfigError` naming every unknown key, with the closest known key."""
    known = known_keys()
    problems = []
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown key {key!r} in {where}{hint}")
    if problems:
        raise ConfigError("; ".join(problems))


def parse_overrides(tokens: list[str]) -> dict[str, Any]:
    """``['--lr', '1e-3', '--hyperparameters.num_channels', '32']`` -> nested dict.

    Values are parsed as YAML scalars (``1e-3`` -> float, ``null`` -> None,
    ``[H, O]`` -> list); a flag without a value means ``True``.
    """
    out: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--"):
            raise ConfigError(f"expected an option --key, got {token!r}")
        key, eq, value = token[2:].partition("=")
        if not eq:
            has_value = i + 1 < len(tokens) and not tokens[i + 1].startswith("--")
            value = tokens[i + 1] if has_value else "true"
            i += 1 if has_value else 0
        i += 1
        key = key.replace("-", "_")
        parsed = yaml.safe_load(value)
        if "." in key:
            head, sub = key.split(".", 1)
            out.setdefault(head, {})[sub] = parsed
        else:
            out[key] = parsed
    return out


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides win; dict-valued keys (``hyperparameters``) are merged one level deep."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML file (or nothing), apply overrides, validate.

    Relative data paths in the file are resolved against the file's folder.
    """
    data: dict[str, Any] = {}
    if path is not None:
        text = Path(path).read_text()
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping of keys")
        check_keys(list(data), where=str(path))
        data = _resolve_paths(data, Path(path).parent)
    overrides = overrides or {}
    check_keys(list(overrides), where="command-line overrides")
    return TrainConfig(**merge(data, overrides))


def _resolve_paths(data: dict[str, Any], root: Path) -> dict[str, Any]:
    out = dict(data)
    for key in ("train_file", "valid_file", "test_file", "init_from", "replay_file"):
        value = out.get(key)
        if value and not Path(value).is_absolute() and not Path(value).exists():
            candidate = root / value
            if candidate.exists():
                out[key] = str(candidate)
    return out
