"""PAN pooling as a pure torch module (docs/spec.md §1.1)."""

import pytest
import torch

from pansim.modules.pan import PANPooling


def _graph(n_nodes=6, n_edges=20, n_species=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    species = torch.nn.functional.one_hot(
        torch.randint(n_species, (n_nodes,), generator=g), n_species
    ).double()
    sender = torch.randint(n_nodes, (n_edges,), generator=g)
    receiver = torch.randint(n_nodes, (n_edges,), generator=g)
    envelope = torch.rand(n_edges, 1, generator=g, dtype=torch.float64)
    return envelope, species, sender, receiver


def _pan(**kw):
    torch.manual_seed(0)
    return PANPooling(num_species=3, num_channels=5, c_max=4.0, **kw).double()


def _perturbed(**kw):
    pan = _pan(**kw)
    with torch.no_grad():
        for p in pan.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return pan


def test_identity_at_init():
    s = _pan()(*_graph())
    assert s.shape == (6, 5)
    assert torch.equal(s, torch.ones_like(s))


def test_coordination_matches_definition():
    pan = _perturbed()
    envelope, species, sender, receiver = _graph()
    c = pan.coordination(envelope, species, sender, receiver)
    w = pan.species_weights
    expected = torch.zeros(6, dtype=torch.float64)
    for e in range(len(sender)):
        z = int(species[sender[e]].argmax())
        expected[receiver[e]] += w[z] * envelope[e, 0]
    torch.testing.assert_close(c, expected, rtol=1e-14, atol=1e-14)


def test_amplitude_range_and_dependence_on_coordination():
    pan = _perturbed()
    envelope, species, sender, receiver = _graph()
    s = pan(envelope, species, sender, receiver)
    assert torch.all(s > 0) and torch.all(s < 2)
    s2 = pan(0.5 * envelope, species, sender, receiver)
    assert not torch.allclose(s, s2)


def test_permutation_equivariance():
    pan = _perturbed()
    envelope, species, sender, receiver = _graph()
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(1))
    inverse = torch.argsort(perm)  # node k of the new numbering is old node perm[k]
    s = pan(envelope, species, sender, receiver)
    s_perm = pan(envelope, species[perm], inverse[sender], inverse[receiver])
    torch.testing.assert_close(s_perm, s[perm], rtol=1e-14, atol=1e-14)
    edge_order = torch.randperm(len(sender), generator=torch.Generator().manual_seed(2))
    s_edges = pan(envelope[edge_order], species, sender[edge_order], receiver[edge_order])
    torch.testing.assert_close(s_edges, s, rtol=1e-13, atol=1e-14)


def test_isolated_node_gets_finite_amplitude():
    pan = _perturbed()
    envelope, species, sender, receiver = _graph()
    s = pan(envelope[:0], species, sender[:0], receiver[:0])
    assert s.shape == (6, 5) and torch.isfinite(s).all()


def test_twice_differentiable():
    pan = _perturbed()
    envelope, species, sender, receiver = _graph()
    envelope.requires_grad_(True)
    w = pan.species_weights.detach().clone().requires_grad_(True)

    def fn(env, w):
        params = {"species_weights": w}
        return torch.func.functional_call(pan, params, (env, species, sender, receiver))

    assert torch.autograd.gradcheck(fn, (envelope, w))
    assert torch.autograd.gradgradcheck(fn, (envelope, w))


def test_scripts():
    pan = _perturbed()
    args = _graph()
    torch.testing.assert_close(torch.jit.script(pan)(*args), pan(*args), rtol=0, atol=0)


@pytest.mark.parametrize("kw", [{"c_max": 0.0}, {"num_basis": 1}])
def test_bad_sizes(kw):
    with pytest.raises(ValueError):
        PANPooling(2, 4, **kw)


def test_amplitude_of_coordination_matches_forward():
    pan = _perturbed()
    env, species, sender, receiver = _graph()
    c = pan.coordination(env, species, sender, receiver)
    assert torch.equal(pan.amplitude(c), pan(env, species, sender, receiver))


def test_curvature_is_zero_at_init_and_matches_a_finite_difference():
    assert float(_pan().curvature()) == 0.0
    pan = _perturbed()
    c = torch.linspace(0.0, 1.5 * 4.0, 65, dtype=torch.float64)
    h = float(c[1] - c[0])
    # independent estimate: central differences evaluated at shifted points
    s = lambda x: pan.amplitude(x)  # noqa: E731
    second = (s(c[1:-1] + h) - 2 * s(c[1:-1]) + s(c[1:-1] - h)) / h**2
    assert torch.allclose(pan.curvature(), (second**2).mean(), rtol=1e-10)
    assert float(pan.curvature()) > 0.0
