"""Processes the fault-injection tests kill: ``python _victim.py SCENARIO DIR [ARG]``.

Scenarios
---------
md DIR STEPS             EMT copper MD into DIR (checkpoint every 5 steps, a frame every 5)
md-kill-in-rewrite DIR K restart MD in DIR; SIGKILL itself after K frames of the restart's
                         trajectory rewrite are written
save-model DIR           save a tiny model to DIR/model.safetensors in a loop (until killed)
label DIR                run a labelling job whose worker sleeps (until killed)
train DIR                train a tiny model into DIR (resuming when DIR has a checkpoint)

Each prints ``ready`` (flushed) when the interesting part starts.
"""

import os
import signal
import sys
import warnings
from pathlib import Path

warnings.simplefilter("ignore")
HERE = Path(__file__).resolve().parent


def md(folder: str, steps: int) -> None:
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from workflows.md import run_md

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
    print("ready", flush=True)
    run_md(atoms, EMT(), ensemble="nve", steps=steps, timestep_fs=2.0, temperature_K=300,
           checkpoint_every=5, traj_every=5, seed=3, outdir=folder)  # fmt: skip


def md_kill_in_rewrite(folder: str, frames: int) -> None:
    """Restart the MD of ``folder`` and die by SIGKILL inside the trajectory rewrite."""
    from ase.io.trajectory import TrajectoryWriter

    import workflows.md as md_module

    original_write, original_truncate = TrajectoryWriter.write, md_module._Run._truncate_trajectory
    state = {"inside": False, "n": 0}

    def write(self, atoms=None, **kw):
        if state["inside"]:
            state["n"] += 1
            if state["n"] > frames:
                os.kill(os.getpid(), signal.SIGKILL)
        return original_write(self, atoms, **kw)

    def truncate(self):
        state["inside"] = True
        original_truncate(self)

    TrajectoryWriter.write = write
    md_module._Run._truncate_trajectory = truncate
    md(folder, 400)


def save_model_loop(folder: str) -> None:
    sys.path.insert(0, str(HERE.parent))
    from _tiny_models import build_tiny

    from pansim.model_io import save_model

    model = build_tiny(elements=["Cu"], r_max=4.0, seed=0)
    print("ready", flush=True)
    k = 0
    while True:
        save_model(model, Path(folder) / "model.safetensors", metadata={"k": k})
        k += 1


def label(folder: str) -> None:
    import pansim.data.labelers as lab

    sleeper = HERE / "_sleeping_worker.py"
    lab._command = lambda job, inp, out, log: [sys.executable, str(sleeper), str(inp), str(out)]
    print("ready", flush=True)
    lab.run_job({"code": "pyscf", "atoms": {}, "calc": {}}, workdir=folder, timeout=600)


def train(folder: str) -> None:
    sys.path.insert(0, str(HERE.parent / "training"))
    from _tiny import TINY

    from pansim.training.config import TrainConfig
    from pansim.training.synthetic import write_emt_splits
    from pansim.training.trainer import CHECKPOINT
    from pansim.training.trainer import train as run_training

    data = Path(folder).with_name(Path(folder).name + "-data")
    files = write_emt_splits(data, sizes=(8, 4, 4), seed=1)  # the same files every time
    config = TrainConfig(
        train_file=str(files["train"]),
        valid_file=str(files["val"]),
        test_file=None,
        variant="pan+pgs",
        r_max=4.0,
        hyperparameters=dict(TINY),
        batch_size=3,
        max_epochs=6,
        lr=5e-3,
        checkpoint_every=1,
        out_dir=folder,
        progress=False,
        device="cpu",
    )
    print("ready", flush=True)
    run_training(config, resume=(Path(folder) / CHECKPOINT).exists())


if __name__ == "__main__":
    scenario, where = sys.argv[1], sys.argv[2]
    arg = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    {
        "md": lambda: md(where, arg),
        "md-kill-in-rewrite": lambda: md_kill_in_rewrite(where, arg),
        "save-model": lambda: save_model_loop(where),
        "label": lambda: label(where),
        "train": lambda: train(where),
    }[scenario]()
