"""PGS edge mixer and tapered ES readout expansion as pure torch modules (SPEC 1.2)."""

import numpy as np
import pytest
import torch
from scipy.special import spherical_jn

from pansim.modules.pgs import (
    ESReadoutExpansion,
    FourierBesselEdgeMixer,
    spherical_bessel_j1,
    spherical_bessel_j1_zeros,
)


def _perturb(module, scale=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


# -- j1 -------------------------------------------------------------------------------
def test_j1_matches_scipy_including_small_arguments():
    x = torch.cat([torch.logspace(-8, 0, 200), torch.linspace(0, 40, 4001)]).double()
    ref = spherical_jn(1, x.numpy())
    np.testing.assert_allclose(spherical_bessel_j1(x).numpy(), ref, rtol=1e-12, atol=1e-15)
    dref = spherical_jn(1, x.numpy(), derivative=True)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(spherical_bessel_j1(xg).sum(), xg)
    np.testing.assert_allclose(grad.numpy(), dref, rtol=1e-10, atol=1e-13)


def test_j1_zeros():
    zeros = spherical_bessel_j1_zeros(10)
    np.testing.assert_allclose(zeros[:2], [4.493409457909064, 7.725251836937707], rtol=1e-14)
    assert np.abs(spherical_jn(1, np.array(zeros))).max() < 1e-14
    assert np.all(np.diff(zeros) > 3.0)


def test_j1_second_derivative_is_finite_at_switch_point():
    x = torch.tensor([0.0, 0.3, 0.3 - 1e-12, 1.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(spherical_bessel_j1, (x[1:].detach().requires_grad_(),))
    (g,) = torch.autograd.grad(spherical_bessel_j1(x).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    assert torch.isfinite(g).all() and torch.isfinite(gg).all()


# -- edge mixer ---------------------------------------------------------------------------
def _edges(n=30, r_max=4.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = 0.2 + (r_max - 0.2) * torch.rand(n, 1, generator=g, dtype=torch.float64)
    envelope = (1 - lengths / r_max) ** 3
    radial = torch.randn(n, 6, generator=g, dtype=torch.float64) * envelope
    return radial, lengths, envelope


def test_edge_mixer_is_identity_at_init():
    mixer = FourierBesselEdgeMixer(6, r_max=4.0, num_fb=5).double()
    radial, lengths, envelope = _edges()
    assert torch.equal(mixer(radial, lengths, envelope), radial)
    assert mixer.weight.shape == (11, 6)


def test_edge_mixer_basis_is_j1_at_zeros_times_envelope():
    mixer = FourierBesselEdgeMixer(6, r_max=4.0, num_fb=3).double()
    _, lengths, envelope = _edges()
    basis = mixer.basis(lengths, envelope)
    zeros = np.array(spherical_bessel_j1_zeros(3))
    expected = spherical_jn(1, zeros * lengths.numpy() / 4.0) * envelope.numpy() / 0.4362
    np.testing.assert_allclose(basis.numpy(), expected, rtol=1e-12, atol=1e-14)
    end = mixer.basis(torch.full((1, 1), 4.0, dtype=torch.float64), torch.zeros(1, 1).double())
    assert torch.equal(end, torch.zeros_like(end))


def test_edge_mixer_learns_and_is_twice_differentiable():
    mixer = _perturb(FourierBesselEdgeMixer(6, r_max=4.0, num_fb=4).double())
    radial, lengths, envelope = _edges(n=5)
    assert not torch.allclose(mixer(radial, lengths, envelope), radial)
    lengths.requires_grad_(True)
    fn = lambda r: mixer(radial, r, (1 - r / 4.0) ** 3)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (lengths,))
    assert torch.autograd.gradgradcheck(fn, (lengths,))


def test_edge_mixer_scripts():
    mixer = _perturb(FourierBesselEdgeMixer(6, r_max=4.0).double())
    args = _edges()
    torch.testing.assert_close(torch.jit.script(mixer)(*args), mixer(*args), rtol=0, atol=0)


# -- ES readout expansion ----------------------------------------------------------------------
def _es(**kw):
    return ESReadoutExpansion(num_channels=4, **kw).double()


def test_es_is_zero_at_init():
    x = torch.randn(7, 4, dtype=torch.float64)
    out = _es()(x)
    assert out.shape == (7,) and torch.equal(out, torch.zeros(7, dtype=torch.float64))


def test_es_basis_shape_support_and_peak():
    es = _es(num_basis=5, beta=3.0)
    t = torch.linspace(-0.999, 0.999, 2001, dtype=torch.float64)
    x = (es.tau * torch.atanh(t)).unsqueeze(-1).expand(-1, 4)
    phi = es.basis(x)
    assert phi.shape == (2001, 4, 5) and torch.all(phi >= 0) and torch.all(phi <= 1)
    z = (t.unsqueeze(-1) - es.centers) / es.width
    assert torch.all(phi[:, 0][z.abs() >= 1] == 0)
    centre = es.basis(es.tau * torch.atanh(es.centers[2:3]).reshape(1, 1).expand(1, 4))
    torch.testing.assert_close(centre[0, 0, 2], torch.tensor(1.0, dtype=torch.float64))


def test_es_formula():
    es = _es(num_basis=4, tau=0.7, beta=5.0, width=0.9)
    x = torch.tensor([[0.3, -0.2, 1.5, -3.0]], dtype=torch.float64)
    t = np.tanh(x.numpy() / 0.7)[..., None]
    z = (t - np.linspace(-1, 1, 4)) / 0.9
    q = np.clip(1 - z**2, 0, None)
    expected = np.where(np.abs(z) < 1, q**2 * np.exp(5.0 * (np.sqrt(q) - 1)), 0.0)
    np.testing.assert_allclose(es.basis(x).numpy(), expected, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("power", [2, 3])
def test_es_no_nan_gradients_at_or_beyond_the_support_edge(power):
    es = _perturb(_es(num_basis=3, width=0.5, taper_power=power))
    # t exactly on a support boundary (|z| = 1) and far outside it
    edge = torch.tensor([0.5, -0.5, 0.0], dtype=torch.float64)
    x = torch.atanh(edge).unsqueeze(-1).expand(-1, 4).clone().requires_grad_(True)
    (g,) = torch.autograd.grad(es(x).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    assert torch.isfinite(g).all() and torch.isfinite(gg).all()


@pytest.mark.parametrize("power", [2, 3])
def test_es_is_c1_across_the_support_edge(power):
    """phi and dphi/dt are continuous at |z| = 1 (the taper's purpose)."""
    es = _es(num_basis=3, width=0.5, taper_power=power)
    t = torch.tensor([0.5 - 1e-7, 0.5 + 1e-7], dtype=torch.float64)  # edge of phi_1 (mu = 0)
    x = torch.atanh(t).unsqueeze(-1).expand(-1, 4).clone().requires_grad_(True)
    phi = es.basis(x)[:, 0, 1]
    (dphi,) = torch.autograd.grad(phi.sum(), x)
    assert phi.abs().max() < 1e-12 and dphi.abs().max() < 1e-5


def test_es_twice_differentiable():
    es = _perturb(_es(num_basis=6))
    x = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(es, (x,))
    assert torch.autograd.gradgradcheck(es, (x,))


def test_es_scripts():
    es = _perturb(_es())
    x = torch.randn(9, 4, dtype=torch.float64)
    torch.testing.assert_close(torch.jit.script(es)(x), es(x), rtol=0, atol=0)


@pytest.mark.parametrize("kw", [{"num_basis": 1}, {"tau": 0.0}, {"taper_power": 1}])
def test_es_bad_sizes(kw):
    with pytest.raises(ValueError):
        _es(**kw)


@pytest.mark.parametrize("name", ["pan", "pgs"])
def test_modules_know_nothing_of_backbones(name):
    """SPEC invariant 6: each module file imports torch and the standard library only."""
    import ast
    import importlib

    source = open(importlib.import_module(f"pansim.modules.{name}").__file__).read()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "math", "torch"}, imported
