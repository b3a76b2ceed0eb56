"""Entry point of the processes spawned by test_ddp.py (importable by spawn)."""

import os

import torch


def worker(rank, world_size, port, config_dict):
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    torch.set_num_threads(1)
    from pansim.training.config import TrainConfig
    from pansim.training.trainer import train

    train(TrainConfig(**config_dict))
