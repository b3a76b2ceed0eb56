"""The training loop: data, model, optimizer, EMA, checkpoints, early stopping.

:func:`train` is the library entry point behind ``pansim train``. One process
or many (``torchrun``): each optimizer step uses one global batch of
``batch_size`` structures, sharded over processes; see
:mod:`pansim.training.distributed` and :mod:`pansim.training.loss`.

Files written to ``out_dir`` (by the main process): ``checkpoint.pt`` (latest
state, for ``--resume``), ``best_model.safetensors`` (via :func:`pansim.save_model`,
EMA weights of the best validation epoch), ``metrics.csv`` and
``metrics.json`` (one row per epoch), ``config.yaml`` and ``summary.json``.

TorchScript parts of a model (e3nn's tensor products) run unoptimised while
training (:func:`plain_torchscript`). The profiling executor runs the first calls
of each scripted graph one way and the later calls another, differing in the last
bits. Then a run resumed in a fresh process would not repeat the steps of a straight
run. Unoptimised execution is the same on every call, and it was no slower:
a median train step of 0.32 s against 0.36 s optimised, on the Ag pan+pgs model
(16 interleaved steps each, 1 thread, 2 busy CPU cores).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from ase.data import chemical_symbols

from pansim._io import atomic_path, write_text_atomic
from pansim.backbones import state_dict_parameters
from pansim.model_io import default_dtype
from pansim.precision import DTYPES  # noqa: F401 - one definition, re-exported
from pansim.training import checkpoint as ckpt
from pansim.training import distributed as ddp
from pansim.training import finetune
from pansim.training.config import TrainConfig
from pansim.training.data import (
    Sample,
    batch_to_tensors,
    file_sha256,
    fit_atomic_energies,
    given_atomic_energies,
    load_dataset,
    resolve_elements,
    statistics,
)
from pansim.training.evaluate import (
    error_sums,
    forward,
    metrics,
    metrics_from_sums,
    predict,
    wants_stress,
)
from pansim.training.loss import global_counts, squared_errors, weighted_loss

BEST_MODEL = "best_model.safetensors"
CHECKPOINT = "checkpoint.pt"


def plain_torchscript():
    """Context in which scripted graphs run the same way on every call (no profiling)."""
    return torch.jit.optimized_execution(False)


class TrainingDiverged(RuntimeError):
    """The loss or gradient became NaN/inf; the message names the batch."""


@dataclasses.dataclass
class Datasets:
    """Training, validation and (optional) test samples with provenance."""

    train: list[Sample]
    valid: list[Sample]
    test: list[Sample] | None
    atomic_numbers: list[int]
    hashes: dict[str, str]


@dataclasses.dataclass
class State:
    """Position and bookkeeping of a run (all of it goes into the checkpoint)."""

    epoch: int = 0
    step: int = 0
    batch_in_epoch: int = 0
    best_metric: float = math.inf
    best_epoch: int = -1
    epochs_since_best: int = 0
    epoch_loss_sum: float = 0.0
    epoch_batches: int = 0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    stop_reason: str = ""
    train_seconds: float = 0.0


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_data(config: TrainConfig) -> Datasets:
    """Read and check the train / valid / test files of ``config``."""
    files = {"train_file": config.train_file, "valid_file": config.valid_file}
    if config.test_file:
        files["test_file"] = config.test_file
    others = {k: v for k, v in files.items() if k != "train_file"}
    numbers = resolve_elements(config.train_file, others, config.elements)
    keys = (config.energy_key, config.forces_key, config.stress_key)
    sets = {k: load_dataset(v, keys, numbers, config.r_max) for k, v in files.items()}
    hashes = {k: file_sha256(v) for k, v in files.items()}
    return Datasets(sets["train_file"], sets["valid_file"], sets.get("test_file"), numbers, hashes)


def model_kwargs(config: TrainConfig, data: Datasets) -> dict[str, Any]:
    """Keyword arguments of :func:`pansim.build_model`, data-derived ones filled in.

    Set from the training data unless given in ``hyperparameters``:
    ``atomic_energies`` (per-element E0s, eV, fitted or from the config),
    ``avg_num_neighbors``, ``atomic_inter_shift`` (eV/atom), ``atomic_inter_scale``
    (eV/A) and, for variants with PAN, ``c_max``.
    """
    if config.atomic_energies == "fit":
        e0 = fit_atomic_energies(data.train, data.atomic_numbers)
    else:
        e0 = given_atomic_energies(config.atomic_energies, data.atomic_numbers)
    p = int(config.hyperparameters.get("num_polynomial_cutoff", 5))
    stats = statistics(data.train, e0, config.r_max, config.c_max_percentile, p)
    derived: dict[str, Any] = {
        "atomic_energies": [float(x) for x in e0],
        "avg_num_neighbors": stats["avg_num_neighbors"],
        "atomic_inter_shift": stats["mean_interaction_energy"],
        "atomic_inter_scale": stats["rms_forces"],
    }
    if "pan" in config.variant.split("+"):
        derived["c_max"] = stats["c_max"] * config.c_max_margin
    return {
        "backbone": config.backbone,
        "variant": config.variant,
        "elements": [chemical_symbols[z] for z in data.atomic_numbers],
        "r_max": config.r_max,
        "seed": config.seed,
        **derived,
        **config.hyperparameters,
    }


#: the modules a variant adds to the backbone (PAN, PGS), as one part of a parameter's name:
#: state dict names (``pan_layers.0.pan.*``, ``edge_mixer.*``,
#: ``readout_expansions.0.expansion.*``) and module paths (``interactions.0.pan.*``,
#: ``radial_embedding.edge_mixer.*``, ``readouts.0.expansion.*``) alike
ADDED_MODULES = frozenset({"pan", "edge_mixer", "expansion"})


def pan_curvature(model: torch.nn.Module) -> torch.Tensor:
    """Sum over the PAN layers of ``model`` of their curvature penalty (0 without PAN)."""
    from pansim.modules.pan import PANPooling

    terms = [m.curvature() for m in model.modules() if isinstance(m, PANPooling)]
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()


def is_added_parameter(name: str) -> bool:
    """Whether a parameter belongs to a PAN / PGS module rather than the backbone."""
    return not ADDED_MODULES.isdisjoint(name.split(".")[:-1])


def epoch_order(n: int, batch_size: int, seed: int, epoch: int, world: int) -> list[list[int]]:
    """Global batches of one epoch: a seeded permutation of ``range(n)``, cut in batches.

    A trailing batch with fewer structures than processes is dropped (every
    process needs at least one structure).
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=generator).tolist()
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    return [b for b in batches if len(b) >= world]


class Trainer:
    """One training run; build with a config, then call :meth:`fit`.

    Parameters
    ----------
    config : TrainConfig
        All settings.
    info : DistInfo, optional
        Process group information (default: from the environment).
    builder : callable, optional
        Model builder with the signature of :func:`pansim.build_model`.
    """

    def __init__(self, config: TrainConfig, info=None, builder: Callable | None = None):
        config = finetune.resolve(config)  # init_from: variant, r_max, elements of the file
        self.config = config
        self.info = info or ddp.setup(config.device)
        self.dtype = DTYPES[config.dtype]
        self.out = Path(config.out_dir)
        seed_everything(config.seed)
        self.data = load_data(config)
        self.replay = self._load_replay()
        if config.init_from:
            self.data.hashes["init_from"] = file_sha256(config.init_from)
            self.kwargs = finetune.init_kwargs(config)
        else:
            self.kwargs = model_kwargs(config, self.data)
        self.model = self._build(builder)
        self.frozen = finetune.apply_freeze(self.model, config.freeze)
        self.calibration = self._calibrate() if config.pgs_calibrate else None
        self.optimizer = self._make_optimizer()
        self.scheduler = self._make_scheduler()
        self.ema = self._make_ema()
        self.engine = ddp.wrap(self.model, self.info)
        self.state = State()
        self.fingerprint = _fingerprint(config, self.data.hashes)
        self.weights = {
            "energy": config.energy_weight,
            "forces": config.forces_weight,
            "stress": config.stress_weight,
        }

    # -- construction -------------------------------------------------------------
    def _load_replay(self) -> list[Sample] | None:
        """Replay structures (``replay_file``), graphed like the training data."""
        c = self.config
        if not c.replay_file:
            return None
        keys = (c.energy_key, c.forces_key, c.stress_key)
        self.data.hashes["replay_file"] = file_sha256(c.replay_file)
        return load_dataset(c.replay_file, keys, self.data.atomic_numbers, c.r_max)

    def _build(self, builder: Callable | None) -> torch.nn.Module:
        if self.config.init_from:
            model = finetune.initial_model(self.config, self.data.atomic_numbers, self.dtype)
            return model.to(device=self.info.device)
        if builder is None:
            from pansim.backbones import build_model as builder
        with default_dtype(self.dtype):
            model = builder(**self.kwargs)
        return model.to(device=self.info.device, dtype=self.dtype)

    def _calibrate(self) -> dict[str, dict[str, float]]:
        """Fit the PGS buffers to the training structures (``pgs_calibrate``).

        The ES squash width is ``pgs_calibrate_spread`` standard deviations of the
        scalars at initialisation: trained scalars spread several times wider (Si:
        4-7 times, ``results/ablation/scalar_pathway_probe.md``), and a squash
        calibrated to the untrained spread would saturate.
        Every process sees the whole training set in file order, so all get the
        same buffers; a resumed run then loads them from its checkpoint.
        """
        from pansim.modules.calibration import calibrate_scalar_pathway

        size = self.config.valid_batch_size
        train = self.data.train
        batches = (
            batch_to_tensors(train[i : i + size], self.dtype, self.info.device)
            for i in range(0, len(train), size)
        )
        with plain_torchscript():
            return calibrate_scalar_pathway(
                self.model,
                batches,
                lambda model, batch: model(batch, compute_force=False),
                spread=self.config.pgs_calibrate_spread,
            )

    def _make_optimizer(self) -> torch.optim.Optimizer:
        # parameters in state dict order (also for the EMA and clipping): checkpoints index
        # optimizer and EMA state by position, and that order is the model file's
        cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[self.config.optimizer]
        c = self.config
        named = [(n, p) for n, p in state_dict_parameters(self.model) if p.requires_grad]
        if c.module_lr_scale == 1.0:
            return cls([p for _, p in named], lr=c.lr, weight_decay=c.weight_decay)
        added = [p for n, p in named if is_added_parameter(n)]
        backbone = [p for n, p in named if not is_added_parameter(n)]
        groups = [{"params": backbone}]  # group 0: the backbone (its lr is the one logged)
        if added:
            groups.append({"params": added, "lr": c.lr * c.module_lr_scale})
        return cls(groups, lr=c.lr, weight_decay=c.weight_decay)

    def _make_scheduler(self):
        c = self.config
        if c.scheduler == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, factor=c.scheduler_factor, patience=c.scheduler_patience,
                min_lr=c.min_lr,
            )  # fmt: skip
        if c.scheduler == "cosine":
            steps = c.max_epochs * max(1, len(self._batches(0)))
            return torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=steps, eta_min=c.min_lr
            )
        return None

    def _make_ema(self):
        if self.config.ema_decay is None:
            return None
        from torch_ema import ExponentialMovingAverage

        params = [p for _, p in state_dict_parameters(self.model) if p.requires_grad]
        return ExponentialMovingAverage(params, decay=self.config.ema_decay)

    def _batches(self, epoch: int) -> list[list[int]]:
        c = self.config
        return epoch_order(len(self.data.train), c.batch_size, c.seed, epoch, self.info.world_size)

    # -- one step -----------------------------------------------------------------
    def train_step(self, indices: list[int]) -> float:
        """One optimizer step on the global batch ``indices``; returns its loss."""
        global_batch = [self.data.train[i] for i in indices]
        local = ddp.shard(global_batch, self.info)
        batch = batch_to_tensors(local, self.dtype, self.info.device)
        stress = self.weights["stress"] != 0.0 and wants_stress(local)
        pred = forward(self.engine, batch, training=True, stress=stress)
        loss = weighted_loss(squared_errors(pred, batch), global_counts(global_batch), self.weights)
        if self.replay:
            loss = loss + self.config.replay_weight * self._replay_loss(len(indices))
        if self.config.pan_curvature_weight > 0.0:
            # the same on every process: added once, on rank 0, to the summed loss
            if self.info.rank == 0:
                loss = loss + self.config.pan_curvature_weight * pan_curvature(self.model)
        total = float(ddp.all_reduce_sum(loss, self.info))
        self._check_finite(total, indices, "loss")
        self.optimizer.zero_grad(set_to_none=True)
        # DDP averages gradients over processes; the local losses are already
        # normalised by global counts, so scale by the world size to get their sum
        (loss * self.info.world_size).backward()
        self._clip(indices)
        with self._warmup():
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update()
        if self.config.scheduler == "cosine":
            self.scheduler.step()
        return total

    @contextlib.contextmanager
    def _warmup(self) -> Iterator[None]:
        """Scale every group's learning rate by the warm-up ramp for this step only.

        The scheduled rates are restored afterwards, so schedulers, checkpoints and
        ``metrics.csv`` see the schedule itself; the ramp depends only on the step count,
        so a resumed run repeats it exactly.
        """
        steps = self.config.lr_warmup_steps
        if self.state.step >= steps:
            yield
            return
        groups = self.optimizer.param_groups
        scheduled = [g["lr"] for g in groups]
        for g, lr in zip(groups, scheduled, strict=True):
            g["lr"] = lr * (self.state.step + 1) / steps
        try:
            yield
        finally:
            for g, lr in zip(groups, scheduled, strict=True):
                g["lr"] = lr

    def _replay_loss(self, n: int) -> torch.Tensor:
        """Loss of ``n`` replay structures (seeded by the step: a resumed run repeats it)."""
        picks = finetune.replay_indices(len(self.replay), n, self.config.seed, self.state.step)
        global_batch = [self.replay[i] for i in picks]
        local = ddp.shard(global_batch, self.info)
        batch = batch_to_tensors(local, self.dtype, self.info.device)
        stress = self.weights["stress"] != 0.0 and wants_stress(local)
        pred = forward(self.engine, batch, training=True, stress=stress)
        counts = global_counts(global_batch)
        return weighted_loss(squared_errors(pred, batch), counts, self.weights)

    def _clip(self, indices: list[int]) -> None:
        params = [p for _, p in state_dict_parameters(self.model) if p.grad is not None]
        max_norm = self.config.clip_grad_norm
        if max_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        else:
            norms = [torch.linalg.vector_norm(p.grad) for p in params]
            norm = torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())
        self._check_finite(float(norm), indices, "gradient norm")

    def _check_finite(self, value: float, indices: list[int], what: str) -> None:
        if math.isfinite(value):
            return
        s = self.state
        saved = self.out / CHECKPOINT
        where = f"the last good checkpoint is {saved}" if saved.exists() else "no checkpoint yet"
        raise TrainingDiverged(
            f"{what} is {value} at epoch {s.epoch}, step {s.step + 1} (batch {s.batch_in_epoch} "
            f"of the epoch; structures {sorted(indices)} of {self.config.train_file}); "
            f"training stopped, {where}"
        )

    # -- validation ---------------------------------------------------------------
    @contextlib.contextmanager
    def averaged(self) -> Iterator[None]:
        """Use the EMA weights inside the block (plain weights without EMA)."""
        if self.ema is None:
            yield
        else:
            with self.ema.average_parameters():
                yield

    def evaluate(self, samples: list[Sample]) -> dict[str, float | None]:
        """Loss and MAE/RMSE (meV/atom, meV/A, GPa) of the current (EMA) weights."""
        local = ddp.shard(samples, self.info)
        size = self.config.valid_batch_size
        sums = torch.zeros(9, dtype=self.dtype, device=self.info.device)
        with self.averaged():
            for start in range(0, len(local), size):
                batch = batch_to_tensors(local[start : start + size], self.dtype, self.info.device)
                stress = wants_stress(local[start : start + size])
                pred = forward(self.model, batch, training=False, stress=stress)
                sums += error_sums(pred, batch)
        sums = ddp.all_reduce_sum(sums, self.info)
        out = metrics_from_sums(sums)
        out["loss"] = _loss_from_sums(sums, self.weights)
        return out

    # -- the loop -----------------------------------------------------------------
    def fit(self, resume: bool = False) -> State:
        """Train until ``max_epochs``, early stopping or ``max_steps``; returns the state.

        The run holds ``out_dir``'s lock (:mod:`pansim._lock`): a second run into
        the same folder raises :class:`pansim._lock.FolderLockedError`.
        """
        from pansim._lock import folder_lock

        with folder_lock(self.out, "pansim train", enabled=self.info.is_main):
            self._prepare_out_dir(resume)
            self._mark = time.perf_counter()
            bar = self._progress()
            with plain_torchscript():
                try:
                    while self.state.epoch < self.config.max_epochs and not self.state.stop_reason:
                        self._run_epoch(bar)
                finally:
                    if bar is not None:
                        bar.close()
                self._finish()
        return self.state

    def _run_epoch(self, bar) -> None:
        batches = self._batches(self.state.epoch)
        for b in range(self.state.batch_in_epoch, len(batches)):
            if self._max_steps_reached():
                return
            loss = self.train_step(batches[b])
            self._after_step(loss, b, bar)
        self._end_epoch()

    def _max_steps_reached(self) -> bool:
        limit = self.config.max_steps
        if limit is None or self.state.step < limit:
            return False
        self.state.stop_reason = f"max_steps={limit} reached"
        self.save_checkpoint()
        return True

    def _after_step(self, loss: float, b: int, bar) -> None:
        s = self.state
        self._tick()
        s.step += 1
        s.batch_in_epoch = b + 1
        s.epoch_loss_sum += loss
        s.epoch_batches += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(epoch=s.epoch, loss=f"{loss:.4g}")
        if s.step % self.config.checkpoint_every == 0:
            self.save_checkpoint()

    def _tick(self) -> None:
        """Add the wall time since the last tick to ``state.train_seconds``."""
        now = time.perf_counter()
        self.state.train_seconds += now - self._mark
        self._mark = now

    def _end_epoch(self) -> None:
        s = self.state
        valid = self.evaluate(self.data.valid)
        self._tick()
        if self.config.scheduler == "plateau":
            self.scheduler.step(valid["loss"])
        row = {
            "epoch": s.epoch,
            "step": s.step,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": s.epoch_loss_sum / max(1, s.epoch_batches),
            **{f"valid_{k}": v for k, v in valid.items()},
        }
        s.history.append(row)
        self._track_best(valid["loss"])
        s.epoch, s.batch_in_epoch, s.epoch_loss_sum, s.epoch_batches = s.epoch + 1, 0, 0.0, 0
        self._write_metrics()
        self.save_checkpoint()

    def _track_best(self, value: float) -> None:
        s = self.state
        if value < s.best_metric:
            s.best_metric, s.best_epoch, s.epochs_since_best = value, s.epoch, 0
            self.save_best()
            return
        s.epochs_since_best += 1
        patience = self.config.early_stopping_patience
        if patience is not None and s.epochs_since_best >= patience:
            s.stop_reason = f"early stopping: no validation improvement for {patience} epochs"

    def _progress(self):
        if not (self.config.progress and self.info.is_main):
            return None
        from tqdm.auto import tqdm

        total = self.config.max_epochs * len(self._batches(0))
        return tqdm(total=total, initial=self.state.step, unit="step", desc="train")

    # -- files --------------------------------------------------------------------
    def _prepare_out_dir(self, resume: bool) -> None:
        path = self.out / CHECKPOINT
        if resume:
            self.load_checkpoint(path)
        elif path.exists():
            raise ckpt.CheckpointError(
                f"{path} exists: pass --resume to continue that run, or choose another out_dir"
            )
        else:
            _refuse_other_run(self.out, self.fingerprint)
        if self.info.is_main:
            write_text_atomic(
                self.out / RUN_FINGERPRINT, json.dumps({"fingerprint": self.fingerprint})
            )
            self.out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.out / "config.yaml", yaml.safe_dump(self.config.to_dict()))

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly."""
        return {
            "fingerprint": self.fingerprint,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "rng": ckpt.rng_state(),
            "state": dataclasses.asdict(self.state),
        }

    def save_checkpoint(self) -> None:
        """Write ``checkpoint.pt`` atomically (main process only)."""
        if self.info.is_main:
            ckpt.save_atomic(self.checkpoint_state(), self.out / CHECKPOINT)

    def load_checkpoint(self, path: Path) -> None:
        """Restore a run from ``path``; refuses checkpoints of other configs."""
        saved = ckpt.load(path)
        ckpt.check_fingerprint(saved, self.fingerprint, path)
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(saved["ema"])
        ckpt.set_rng_state(saved["rng"])
        self.state = State(**{**saved["state"], "stop_reason": ""})

    def save_best(self) -> None:
        """Save the EMA weights with :func:`pansim.save_model` and provenance metadata."""
        if not self.info.is_main:
            return
        from pansim.model_io import save_model

        metadata = {
            "training_config": self.config.to_dict(),
            "data_sha256": self.data.hashes,
            "model_kwargs": self.kwargs,
            "epoch": self.state.epoch,
            "step": self.state.step,
            "valid_loss": self.state.best_metric,
        }
        if self.calibration is not None:
            metadata["pgs_calibration"] = self.calibration
        if getattr(self.model, "pansim_domain", None) is None:  # for out-of-domain warnings
            from pansim.domain import domain_statistics

            train = self.data.train
            self.model.pansim_domain = domain_statistics(
                (s.graph for s in train), (s.numbers for s in train), float(self.model.r_max)
            )
        with self.averaged():
            save_model(self.model, self.out / BEST_MODEL, metadata=metadata)

    def _write_metrics(self) -> None:
        if not self.info.is_main:
            return
        rows = self.state.history
        write_text_atomic(self.out / "metrics.json", json.dumps(rows, indent=1))
        with atomic_path(self.out / "metrics.csv") as tmp, open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    def _finish(self) -> None:
        summary: dict[str, Any] = {
            "stop_reason": self.state.stop_reason or f"max_epochs={self.config.max_epochs}",
            "epochs": self.state.epoch,
            "steps": self.state.step,
            "best_epoch": self.state.best_epoch,
            "best_valid_loss": self.state.best_metric,
            "data_sha256": self.data.hashes,
            "world_size": self.info.world_size,
            "train_seconds": self.state.train_seconds,
            "config": self.config.to_dict(),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if not self.info.is_main:
            return
        best = self.out / BEST_MODEL
        if self.data.test is not None and best.exists():
            summary["test"] = self.test_metrics(best)
        write_text_atomic(self.out / "summary.json", json.dumps(summary, indent=1))

    def test_metrics(self, path: Path) -> dict[str, Any]:
        """Errors of the saved best model on the test file (see :func:`evaluate.metrics`)."""
        from pansim.model_io import load_model

        model = load_model(path).to(device=self.info.device, dtype=self.dtype)
        preds = predict(model, self.data.test, self.config.valid_batch_size, self.info.device)
        return metrics(self.data.test, preds)


def _loss_from_sums(sums: torch.Tensor, weights: dict[str, float]) -> float:
    d = sums.tolist()
    counts = {"energy": d[2], "forces": d[5], "stress": d[8]}
    sse = {"energy": sums[1], "forces": sums[4], "stress": sums[7]}
    return float(weighted_loss(sse, counts, weights))


#: the fingerprint of the inputs of the run that owns an out_dir
RUN_FINGERPRINT = "fingerprint.json"


def _refuse_other_run(out: Path, fingerprint: str) -> None:
    """A fresh run into a folder holding another run's results is refused.

    So is a fresh run of the *same* inputs into a folder that holds its results but no
    checkpoint (a finished run, or a partial one whose ``checkpoint.pt`` is not there, as
    in a clone that keeps only a compressed copy): starting again from epoch 0 would
    overwrite those results.
    """
    path = out / RUN_FINGERPRINT
    if path.exists():
        try:
            previous = json.loads(path.read_text()).get("fingerprint")
        except (OSError, ValueError):
            previous = None
        if previous != fingerprint:
            raise ckpt.CheckpointError(
                f"{out} holds a run with other inputs (config or data fingerprint differs, "
                f"see {path}); choose another out_dir or remove that run"
            )
        if (out / "summary.json").exists():
            raise ckpt.CheckpointError(
                f"{out} holds a finished run of this config (summary.json); training it "
                "again from scratch would overwrite it: choose another out_dir or remove it"
            )
        if (out / BEST_MODEL).exists():
            raise ckpt.CheckpointError(
                f"{out} holds a partial run of this config but no {CHECKPOINT} to resume "
                f"from; restore it (a committed copy: xz -dk {out / CHECKPOINT}.xz) and pass "
                "--resume, or choose another out_dir"
            )
    elif (out / BEST_MODEL).exists():
        raise ckpt.CheckpointError(
            f"{out} already holds {BEST_MODEL} from an earlier run; choose another out_dir"
        )


def _fingerprint(config: TrainConfig, hashes: dict[str, str]) -> str:
    import hashlib

    text = config.fingerprint() + json.dumps(
        {k: v for k, v in hashes.items() if k != "test_file"}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()


def train(config: TrainConfig, resume: bool = False, builder: Callable | None = None) -> State:
    """Train a model as configured (joins a ``torchrun`` process group if launched by one)."""
    info = ddp.setup(config.device)
    try:
        state = Trainer(config, info=info, builder=builder).fit(resume=resume)
    except BaseException:
        ddp.teardown(info, wait_for_peers=False)
        raise
    ddp.teardown(info)
    return state
