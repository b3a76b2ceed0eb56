"""Two CPU processes (gloo) under torchrun give the one-process result on the same global batch."""

import json
import os
import socket
import subprocess
import sys

import torch
import yaml

from pansim.training.trainer import CHECKPOINT, train


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_torchrun_two_processes_match_one_process(make_config, tmp_path):
    """``torchrun --nproc_per_node=2 -m pansim train CONFIG`` through the real CLI, float64."""
    common = dict(batch_size=4, max_epochs=2, dtype="float64", checkpoint_every=100)
    train(make_config(out_dir=str(tmp_path / "one"), **common))
    config = tmp_path / "ddp.yaml"
    two = make_config(out_dir=str(tmp_path / "two"), **common)
    config.write_text(yaml.safe_dump(two.to_dict()))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--master_port", str(free_port()), "-m", "pansim", "train", str(config)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-6000:]
    assert done.stdout.count("done: 2 epochs, 4 steps") == 1  # printed by rank 0 only
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["world_size"] == 2

    a = torch.load(tmp_path / "one" / CHECKPOINT, weights_only=True)
    b = torch.load(tmp_path / "two" / CHECKPOINT, weights_only=True)
    assert a["state"]["step"] == b["state"]["step"] == 4
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=1e-10, atol=1e-12, msg=key)
    for x, y in zip(a["ema"]["shadow_params"], b["ema"]["shadow_params"], strict=True):
        torch.testing.assert_close(y, x, rtol=1e-10, atol=1e-12)
    for ra, rb in zip(a["state"]["history"], b["state"]["history"], strict=True):
        for key, value in ra.items():
            if isinstance(value, float):
                assert abs(rb[key] - value) <= 1e-9 * max(1.0, abs(value)), key
