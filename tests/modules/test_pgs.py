"""PGS edge mixer and tapered ES readout expansion as pure torch modules (docs/spec.md §1.2)."""

import numpy as np
import pytest
import torch
from scipy.special import spherical_jn

from pansim.modules.pgs import (
    ESReadoutExpansion,
    FourierBesselEdgeMixer,
    spherical_bessel_j1,
    spherical_bessel_j1_eager,
    spherical_bessel_j1_slope,
    spherical_bessel_j1_zeros,
    tapered_es,
    tapered_es_slope,
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


@pytest.mark.parametrize("with_small", [False, True])
def test_fused_j1_matches_plain_value_slope_and_second_derivative(with_small):
    x = torch.linspace(0.31, 40.0, 997, dtype=torch.float64)
    if with_small:
        x = torch.cat(
            [torch.logspace(-8, -0.6, 50, dtype=torch.float64), x, torch.zeros(1).double()]
        )
    ref = spherical_jn(1, x.numpy(), derivative=True)
    np.testing.assert_allclose(spherical_bessel_j1_slope(x).numpy(), ref, rtol=1e-10, atol=1e-13)
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    va, vb = spherical_bessel_j1(xa), spherical_bessel_j1_eager(xb)
    assert torch.equal(va.detach(), vb.detach())  # the same ops in the same order
    w = torch.cos(x)  # a non-uniform upstream gradient
    (ga,) = torch.autograd.grad((va * w).sum(), xa, create_graph=True)
    (gb,) = torch.autograd.grad((vb * w).sum(), xb, create_graph=True)
    torch.testing.assert_close(gb, ga, rtol=1e-12, atol=1e-15)
    (gga,) = torch.autograd.grad(ga.sum(), xa)
    (ggb,) = torch.autograd.grad(gb.sum(), xb)
    torch.testing.assert_close(ggb, gga, rtol=1e-10, atol=1e-13)
    (g1,) = torch.autograd.grad((spherical_bessel_j1_eager(xb) * w).sum(), xb)  # no create_graph
    torch.testing.assert_close(g1, ga.detach(), rtol=1e-12, atol=1e-15)
    assert torch.autograd.gradcheck(spherical_bessel_j1_eager, (x[::50].clone().requires_grad_(),))
    assert torch.autograd.gradgradcheck(
        spherical_bessel_j1_eager, (x[::50].clone().requires_grad_(),)
    )


def test_fused_j1_float32_matches_plain():
    x = torch.linspace(0.0, 30.0, 301, dtype=torch.float32, requires_grad=True)
    (ga,) = torch.autograd.grad(spherical_bessel_j1(x).sum(), x)
    (gb,) = torch.autograd.grad(spherical_bessel_j1_eager(x).sum(), x)
    torch.testing.assert_close(spherical_bessel_j1_eager(x), spherical_bessel_j1(x))
    torch.testing.assert_close(gb, ga)


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
    """TorchScript runs the plain-autograd profile, eager mode the fused one: same numbers."""
    es = _perturb(_es())
    x = torch.randn(9, 4, dtype=torch.float64)
    torch.testing.assert_close(torch.jit.script(es)(x), es(x), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("kw", [{"num_basis": 1}, {"tau": 0.0}, {"taper_power": 1}, {"width": 0.0}])
def test_es_bad_sizes(kw):
    with pytest.raises(ValueError):
        _es(**kw)


@pytest.mark.parametrize("name", ["pan", "pgs"])
def test_modules_know_nothing_of_backbones(name):
    """docs/spec.md §1.3, 6: each module file imports torch and the standard library only."""
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


# -- the windowed evaluation against the spec formula, written out plainly --------------------
def reference_basis(x, num_basis, tau, beta, width, power):
    """docs/spec.md §1.2: ``phi_k(t)``, ``t = tanh(x / tau)``, every channel and all K centres."""
    t = torch.tanh(x / tau).unsqueeze(-1)
    z = (t - torch.linspace(-1.0, 1.0, num_basis, dtype=x.dtype)) / width
    inside = z.abs() < 1.0
    q = torch.where(inside, 1.0 - z**2, torch.ones_like(z))
    return torch.where(inside, q**power * torch.exp(beta * (torch.sqrt(q) - 1.0)), 0.0)


def reference_es(x, weight, tau, beta, width, power):
    """docs/spec.md §1.2 readout ``sum_{c,k} A_ck phi_k(t_c)``, dense."""
    return (reference_basis(x, weight.shape[1], tau, beta, width, power) * weight).sum((-2, -1))


def _options(es):
    return float(es.tau), float(es.beta), float(es.width), es.taper_power


def _derivatives(energy_fn, x, weight):
    """Energy, first derivative (with and without graph), second derivatives of a force loss."""
    x = x.clone().requires_grad_(True)
    energy = energy_fn(x)
    (fast,) = torch.autograd.grad(energy.sum(), x, retain_graph=True)  # inference: no graph
    (grad,) = torch.autograd.grad(energy.sum(), x, create_graph=True)  # force training
    second = torch.autograd.grad((grad**2).sum(), [x, weight])
    return [energy, fast, grad, *second]


ES_CASES = [
    {},  # spec defaults: K = 8, w = 2h (window of 4), p = 2
    {"taper_power": 3, "tau": 0.7, "beta": 5.0},
    {"num_basis": 5, "width": 0.3},  # w < h: window of 2
    {"num_basis": 6, "width": 0.9, "tau": 2.0},  # w / h not an integer
    {"num_basis": 4, "width": 3.0},  # support wider than [-1, 1]: window > K
    {"num_basis": 12, "beta": 2.0},
]


@pytest.mark.parametrize("kw", ES_CASES)
def test_es_matches_reference_formula_with_gradients(kw):
    """The windowed readout (eager and TorchScript) is the dense spec sum to 1e-12, to 2nd order."""
    es = _perturb(_es(**kw), scale=1.0)
    g = torch.Generator().manual_seed(7)
    x = 2.0 * torch.randn(200, 4, generator=g, dtype=torch.float64)
    x = torch.cat([x, torch.full((1, 4), 40.0), torch.full((1, 4), -40.0)])  # t = +-1 exactly
    ref = _derivatives(lambda v: reference_es(v, es.weight, *_options(es)), x, es.weight)
    for module in (es, torch.jit.script(es)):
        for got, want in zip(_derivatives(module, x, es.weight), ref, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw", ES_CASES[:3])
def test_es_dense_basis_matches_reference(kw):
    es = _es(**kw)
    x = 2.0 * torch.randn(50, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    want = reference_basis(x, es.weight.shape[1], *_options(es))
    torch.testing.assert_close(es.basis(x), want, rtol=1e-13, atol=1e-15)


def test_es_window_follows_loaded_width():
    """The window is recomputed from loaded buffers (a state dict with another width)."""
    narrow, default = _perturb(_es(width=0.2)), _es()
    assert (narrow.window_start, narrow.window_size) == (0, 2)
    assert (default.window_start, default.window_size) == (-1, 4)
    default.load_state_dict(narrow.state_dict())
    assert (default.window_start, default.window_size) == (0, 2)
    x = torch.randn(30, 4, dtype=torch.float64)
    want = reference_es(x, narrow.weight, *_options(narrow))
    torch.testing.assert_close(default(x), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("power", [2, 3])
def test_es_slope_is_the_derivative_of_the_profile(power):
    z = torch.linspace(-1.3, 1.3, 2601, dtype=torch.float64).requires_grad_(True)
    beta = torch.tensor(4.0, dtype=torch.float64)
    (dphi,) = torch.autograd.grad(tapered_es(z, beta, power).sum(), z)
    slope = tapered_es_slope(z, beta, power)
    torch.testing.assert_close(slope, dphi, rtol=1e-12, atol=1e-14)
    assert torch.all(slope[z.abs() >= 1] == 0)


def test_es_no_grad_and_float32():
    es = _perturb(_es())
    x = 2.0 * torch.randn(64, 4, dtype=torch.float64)
    with torch.no_grad():
        cold = es(x)
    torch.testing.assert_close(cold, es(x), rtol=0, atol=0)
    single = ESReadoutExpansion(num_channels=4).float()
    single.load_state_dict(es.state_dict())
    xs = x.float().requires_grad_(True)
    (g,) = torch.autograd.grad(single(xs).sum(), xs, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), xs)
    assert torch.isfinite(g).all() and torch.isfinite(gg).all()
    torch.testing.assert_close(single(x.float()).double(), cold, rtol=1e-5, atol=1e-5)


# -- optional data calibration and residual mixing (beside docs/spec.md §1.2) ----------------
def test_residual_edge_mixer_is_identity_at_init_and_learns_only_the_new_block():
    mixer = FourierBesselEdgeMixer(6, r_max=4.0, num_fb=5, mix="residual").double()
    radial, lengths, envelope = _edges()
    assert torch.equal(mixer(radial, lengths, envelope), radial)
    assert mixer.weight.shape == (5, 6)
    _perturb(mixer)
    expected = radial + mixer.basis(lengths, envelope) @ mixer.weight
    torch.testing.assert_close(mixer(radial, lengths, envelope), expected, rtol=0, atol=0)
    torch.testing.assert_close(torch.jit.script(mixer)(radial, lengths, envelope), expected)
    with pytest.raises(ValueError, match="unknown edge mix 'half'"):
        FourierBesselEdgeMixer(6, r_max=4.0, mix="half")


def test_edge_mixer_calibration_matches_the_radial_rms_and_keeps_identity():
    mixer = FourierBesselEdgeMixer(6, r_max=4.0, num_fb=5).double()
    radial, lengths, envelope = _edges(n=40)
    before = mixer.basis(lengths, envelope)
    factor = mixer.calibrate(radial, lengths, envelope)
    after = mixer.basis(lengths, envelope)
    torch.testing.assert_close(after, factor * before, rtol=1e-14, atol=0)
    torch.testing.assert_close(after.square().mean().sqrt(), radial.square().mean().sqrt())
    assert torch.equal(mixer(radial, lengths, envelope), radial)  # still the input at init
    with pytest.raises(ValueError, match="no edge inside the cutoff"):
        mixer.calibrate(radial, lengths, torch.zeros_like(envelope))


def test_es_calibration_centres_and_scales_each_channel():
    es = _es()
    g = torch.Generator().manual_seed(3)
    offsets = torch.tensor([5.0, -2.0, 0.3, 0.0], dtype=torch.float64)
    spreads = torch.tensor([0.01, 0.1, 1.0, 0.0], dtype=torch.float64)  # last: constant
    x = offsets + spreads * torch.randn(500, 4, generator=g, dtype=torch.float64)
    es.calibrate(x, spread=1.5)
    torch.testing.assert_close(es.shift, x.mean(0))
    width = es.tau * es.scale
    torch.testing.assert_close(width[:3], 1.5 * x.std(0)[:3])
    assert float(width[3]) == float(es.tau)  # a constant channel keeps the spec's squash
    t = torch.tanh((x - es.shift) / width)
    assert bool((t[:, :3].std(0) > 0.5).all())  # resolved over the centres (spacing 0.29)
    assert torch.equal(es(x), torch.zeros(500, dtype=torch.float64))  # zero at init
    _perturb(es, scale=1.0)
    dense = (es.basis(x) * es.weight).sum((1, 2))
    torch.testing.assert_close(es(x), dense, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.jit.script(es)(x), es(x), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="at least 2 finite samples"):
        es.calibrate(torch.full((5, 4), float("nan"), dtype=torch.float64))


def test_state_dicts_without_calibration_buffers_load_as_spec():
    """Model files from before the buffers existed give the spec's squash and band scale."""
    es, mixer = _perturb(_es()), _perturb(FourierBesselEdgeMixer(6, r_max=4.0).double())
    old_es = {k: v for k, v in es.state_dict().items() if k not in ("shift", "scale")}
    old_mixer = {k: v for k, v in mixer.state_dict().items() if k != "fb_scale"}
    fresh_es, fresh_mixer = _es(), FourierBesselEdgeMixer(6, r_max=4.0).double()
    fresh_es.shift.fill_(3.0)
    fresh_mixer.fb_scale.fill_(2.0)
    fresh_es.load_state_dict(old_es)
    fresh_mixer.load_state_dict(old_mixer)
    x = torch.randn(20, 4, dtype=torch.float64)
    torch.testing.assert_close(fresh_es(x), reference_es(x, es.weight, *_options(es)))
    args = _edges()
    torch.testing.assert_close(fresh_mixer(*args), mixer(*args), rtol=0, atol=0)


def test_adaptive_squash_learns_centre_and_width_in_calibrated_units():
    es = ESReadoutExpansion(num_channels=4, adaptive=True).double()
    x = 0.01 * torch.randn(50, 4, dtype=torch.float64) + 2.0
    es.calibrate(x)
    assert torch.equal(es(x), torch.zeros(50, dtype=torch.float64))  # zero at init
    _perturb(es, scale=0.3)
    width = es.tau * es.scale
    centre = es.shift + width * es.step
    t = torch.tanh((x - centre) / (width * es.log_width.exp()))
    dense = (tapered_es((t.unsqueeze(-1) - es.centers) / es.width, es.beta, 2) * es.weight).sum(
        (1, 2)
    )
    torch.testing.assert_close(es(x), dense, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.jit.script(es)(x), es(x), rtol=1e-12, atol=1e-12)
    x.requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda v: es(v), (x[:3].detach().requires_grad_(True),))
    assert {n for n, _ in es.named_parameters()} == {"weight", "step", "log_width"}
    assert {n for n, _ in _es().named_parameters()} == {"weight"}  # spec: no extra parameters
