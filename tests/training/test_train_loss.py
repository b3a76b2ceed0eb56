import numpy as np
import torch

from pansim.training.data import Sample, batch_to_tensors
from pansim.training.loss import global_counts, squared_errors, weighted_loss

WEIGHTS = {"energy": 2.0, "forces": 3.0, "stress": 5.0}


def sample(n, energy, stress):
    graph = {
        "positions": np.zeros((n, 3)),
        "node_attrs": np.ones((n, 1)),
        "edge_index": np.zeros((2, 0), dtype=np.int64),
        "shifts": np.zeros((0, 3)),
        "unit_shifts": np.zeros((0, 3)),
        "cell": np.eye(3),
    }
    return Sample(graph, np.full(n, 29), energy, np.ones((n, 3)), stress)


def prediction(samples, energy, stress):
    n = sum(s.n_atoms for s in samples)
    return {
        "energy": torch.tensor(energy, dtype=torch.float64),
        "forces": torch.zeros(n, 3, dtype=torch.float64),
        "stress": torch.tensor(np.array(stress), dtype=torch.float64),
    }


def test_loss_by_hand_and_stress_masking():
    samples = [sample(2, 1.0, np.full((3, 3), 0.5)), sample(4, 2.0, None)]
    batch = batch_to_tensors(samples, torch.float64, "cpu")
    # predicted stress of the unlabelled structure is huge: it must not count
    pred = prediction(samples, [3.0, 2.0], [np.zeros((3, 3)), np.full((3, 3), 1e6)])
    loss = weighted_loss(squared_errors(pred, batch), global_counts(samples), WEIGHTS)
    e_term = ((3.0 - 1.0) / 2) ** 2 / 2  # one energy error of 1 eV/atom, two structures
    f_term = 1.0  # all force components off by 1
    s_term = 0.25  # stress labelled on one structure, every component off by 0.5
    expected = 2.0 * e_term + 3.0 * f_term + 5.0 * s_term
    assert abs(float(loss) - expected) < 1e-12


def test_no_stress_labels_means_no_stress_term():
    samples = [sample(2, 1.0, None)]
    batch = batch_to_tensors(samples, torch.float64, "cpu")
    pred = prediction(samples, [1.0], [np.full((3, 3), 7.0)])
    assert global_counts(samples)["stress"] == 0
    loss = weighted_loss(squared_errors(pred, batch), global_counts(samples), WEIGHTS)
    assert float(loss) == 3.0


def test_shard_losses_sum_to_global_loss():
    samples = [sample(n, float(n), np.eye(3) if n % 2 else None) for n in (1, 2, 3, 4, 5)]
    energies = [0.3 * n for n in (1, 2, 3, 4, 5)]
    stresses = [np.full((3, 3), 0.1 * n) for n in (1, 2, 3, 4, 5)]
    counts = global_counts(samples)

    def loss(idx):
        part = [samples[i] for i in idx]
        batch = batch_to_tensors(part, torch.float64, "cpu")
        pred = prediction(part, [energies[i] for i in idx], [stresses[i] for i in idx])
        return float(weighted_loss(squared_errors(pred, batch), counts, WEIGHTS))

    whole = loss(range(5))
    assert abs(loss([0, 2, 4]) + loss([1, 3]) - whole) < 1e-12 * whole
