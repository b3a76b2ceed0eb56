import socket

import torch
import torch.multiprocessing as mp

from pansim.training.trainer import CHECKPOINT, train


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_match_one_process(make_config, tmp_path):
    from _ddp_worker import worker

    common = dict(batch_size=4, max_epochs=2, dtype="float64", checkpoint_every=100)
    single = make_config(out_dir=str(tmp_path / "one"), **common)
    train(single)
    double = make_config(out_dir=str(tmp_path / "two"), **common)
    mp.spawn(worker, args=(2, free_port(), double.to_dict()), nprocs=2, join=True)

    a = torch.load(tmp_path / "one" / CHECKPOINT, weights_only=True)
    b = torch.load(tmp_path / "two" / CHECKPOINT, weights_only=True)
    assert a["state"]["step"] == b["state"]["step"] == 4
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=1e-10, atol=1e-12, msg=key)
    for ra, rb in zip(a["state"]["history"], b["state"]["history"], strict=True):
        for key, value in ra.items():
            if isinstance(value, float):
                assert abs(rb[key] - value) <= 1e-9 * max(1.0, abs(value)), key
    import json

    assert json.loads((tmp_path / "two" / "summary.json").read_text())["world_size"] == 2
