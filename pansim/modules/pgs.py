"""PGS: Physics-Guided Spectral mixers (docs/spec.md §1.2).

Two independent parts:

:class:`FourierBesselEdgeMixer`
    Appends ``n_fb`` order-1 spherical Bessel functions at their zeros,
    ``j1(z_{1,n} r / r_c) * u(r)``, to the backbone's radial edge features and
    mixes old and new with a linear map that starts as identity on the old
    features and zero on the new ones (so the output equals the input at init).
    ``mix="residual"`` keeps the old block fixed at identity (the backbone's radial
    MLP already starts with a linear map of its features, so a learned old block is a
    redundant reparametrisation); :meth:`FourierBesselEdgeMixer.calibrate` scales the
    new features to the rms of the old ones.
:class:`ESReadoutExpansion`
    Squashes each scalar node feature to ``t = tanh(x / tau)`` (optionally centred
    and scaled per channel from data, :meth:`ESReadoutExpansion.calibrate`), expands it in
    ``K`` tapered exponential-of-semicircle functions
    ``phi_k = (1 - z^2)^p exp(beta (sqrt(1 - z^2) - 1))``, ``z = (t - mu_k) / w``
    (zero for ``|z| >= 1``), and returns a per-channel linear map of them
    (zero at init), a site-energy correction.

With the default taper power ``p = 2`` (spec) ``phi_k`` is C^1 with a bounded
second derivative; ``p = 3`` makes it C^2. Both are NaN-free to any order of
autograd: the square root only ever sees a strictly positive argument.

Cost: on edge-wise readouts (Allegro: every edge x 32 channels) the ES expansion is
the largest elementwise work in the model. :class:`ESReadoutExpansion` therefore
evaluates only the ``m`` functions whose support can contain a given ``t`` (4 of 8
by default) and, in eager mode, computes ``dphi/dz`` in the same pass
(:class:`_TaperedES`), so the force backward is one product. The numbers are those
of the dense formula (tests/modules/test_pgs.py checks them against it to 1e-12 in
float64, with first and second derivatives); measurements in docs/nequip.md.
The j1 edge basis does the same (:class:`_J1`: ``j1`` and ``j1'`` from one ``sin``/``cos``
pass, bitwise the values of :func:`spherical_bessel_j1`); energy+forces of the basis
alone took 0.41-0.42x the time of the plain-op version (1800 edges x 8 functions, float32
and float64, 1 thread, 200 interleaved rounds on a loaded machine).
"""

from __future__ import annotations

import math

import torch


def spherical_bessel_j1_zeros(n: int) -> list[float]:
    """First ``n`` positive zeros of j1 (roots of ``tan x = x``), by bisection.

    Parameters
    ----------
    n : int
        Number of zeros.

    Returns
    -------
    list of float
        ``z_{1,1} = 4.4934...``, ``z_{1,2} = 7.7252...``, ...
    """
    zeros = []
    for k in range(1, n + 1):
        lo, hi = k * math.pi + 1e-9, (k + 0.5) * math.pi - 1e-9
        for _ in range(200):  # f = sin x - x cos x changes sign once on (lo, hi)
            mid = 0.5 * (lo + hi)
            f_lo = math.sin(lo) - lo * math.cos(lo)
            f_mid = math.sin(mid) - mid * math.cos(mid)
            lo, hi = (lo, mid) if f_lo * f_mid <= 0 else (mid, hi)
        zeros.append(0.5 * (lo + hi))
    return zeros


def spherical_bessel_j1(x: torch.Tensor, series_below: float = 0.3) -> torch.Tensor:
    """``j1(x) = sin(x)/x^2 - cos(x)/x`` for ``x >= 0``, smooth and exact near 0.

    Parameters
    ----------
    x : torch.Tensor
        Any shape, non-negative arguments.
    series_below : float
        Below this argument a 5-term Taylor series replaces the closed form
        (which cancels catastrophically near 0); relative error < 1e-13.

    Returns
    -------
    torch.Tensor
        Same shape as ``x``.
    """
    small = x < series_below
    xs = torch.where(small, torch.ones_like(x), x)  # safe argument for the closed form
    closed = torch.sin(xs) / xs**2 - torch.cos(xs) / xs
    x2 = x * x
    series = x / 3.0 * (1.0 - x2 / 10.0 * (1.0 - x2 / 28.0 * (1.0 - x2 / 54.0 * (1.0 - x2 / 88.0))))
    return torch.where(small, series, closed)


def spherical_bessel_j1_slope(x: torch.Tensor, series_below: float = 0.3) -> torch.Tensor:
    """``j1'(x) = sin(x)/x - 2 j1(x)/x`` for ``x >= 0``; plain differentiable ops.

    Below ``series_below`` the derivative of the series of :func:`spherical_bessel_j1`
    replaces the closed form (same truncation, relative error < 1e-13).
    """
    small = x < series_below
    xs = torch.where(small, torch.ones_like(x), x)
    sin, cos = torch.sin(xs), torch.cos(xs)
    closed = sin / xs - 2.0 * (sin / xs**2 - cos / xs) / xs
    x2 = x * x
    series = 1.0 / 3.0 - x2 * (
        1.0 / 10.0 - x2 * (1.0 / 168.0 - x2 * (1.0 / 6480.0 - x2 / 443520.0))
    )
    return torch.where(small, series, closed)


class _J1(torch.autograd.Function):
    """:func:`spherical_bessel_j1` with its slope computed in the same pass, for eager autograd.

    Forward evaluates ``j1`` and, when ``x`` needs a gradient, ``j1'`` from the same
    ``sin``/``cos`` (in-place, outside autograd), so the first-order backward is one
    product. With ``create_graph`` (force training) the backward recomputes the slope
    with :func:`spherical_bessel_j1_slope`, plain ops, so higher derivatives are autograd's.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        small = x < 0.3
        xs = x.masked_fill(small, 1.0)  # safe argument for the closed form
        sin = xs.sin()
        j1 = torch.div(sin, xs**2).sub_(torch.div(xs.cos(), xs))  # as spherical_bessel_j1
        # series only where needed (checking costs a device sync, so only on CPU)
        use_series = x.device.type != "cpu" or bool(small.any())
        if use_series:
            j1 = torch.where(small, spherical_bessel_j1(x), j1)
        if ctx.needs_input_grad[0]:
            slope = sin.sub_(j1, alpha=2.0).div_(xs)  # (sin - 2 j1) / x
            if use_series:
                slope = torch.where(small, spherical_bessel_j1_slope(x), slope)
            ctx.save_for_backward(x, slope)
        return j1

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        x, slope = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: a differentiable slope
            slope = spherical_bessel_j1_slope(x)
        return grad * slope


@torch.jit.unused
def spherical_bessel_j1_eager(x: torch.Tensor) -> torch.Tensor:
    """:func:`spherical_bessel_j1` via :class:`_J1`: eager mode, same numbers, cheaper backward."""
    if torch.compiler.is_compiling():
        return spherical_bessel_j1(x)
    return _J1.apply(x)


def _fill_added_buffers(module: torch.nn.Module, state_dict: dict, prefix: str) -> None:
    """Give a state dict from before ``module.ADDED_BUFFERS`` existed their spec values."""
    for name, value in module.ADDED_BUFFERS.items():
        state_dict.setdefault(prefix + name, torch.full_like(getattr(module, name), value))


class FourierBesselEdgeMixer(torch.nn.Module):
    """Radial edge features augmented with a j1 Fourier-Bessel band, then mixed.

    Parameters
    ----------
    num_radial : int
        Width of the backbone's radial features (also the output width).
    r_max : float
        Cutoff radius ``r_c`` (Angstrom).
    num_fb : int
        Number ``n_fb`` of extra j1 functions.
    mix : str
        ``"full"`` (spec): one learned map of old and new features, identity on the
        old ones at init; ``"residual"``: ``radial + basis @ W``, only ``W`` learned.
    """

    #: buffers added after the first model files, with the spec values those files computed with
    ADDED_BUFFERS = {"fb_scale": 1.0}

    def __init__(self, num_radial: int, r_max: float, num_fb: int = 8, mix: str = "full") -> None:
        super().__init__()
        if mix not in ("full", "residual"):
            raise ValueError(f"unknown edge mix {mix!r}; use 'full' or 'residual'")
        self.num_radial = num_radial
        self.residual = mix == "residual"
        zeros = torch.tensor(spherical_bessel_j1_zeros(num_fb))
        self.register_buffer("frequencies", zeros / float(r_max))  # 1/Angstrom
        # common factor of the new features (1: spec; calibrate() matches the radial rms)
        self.register_buffer("fb_scale", torch.tensor(1.0))
        if self.residual:  # only the new block is learned; the old one stays identity
            weight = torch.zeros(num_fb, num_radial)
        else:
            weight = torch.zeros(num_radial + num_fb, num_radial)
            weight[:num_radial] = torch.eye(num_radial)
        self.weight = torch.nn.Parameter(weight)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: D105
        _fill_added_buffers(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def calibrate(
        self, radial: torch.Tensor, lengths: torch.Tensor, envelope: torch.Tensor
    ) -> float:
        """Scale the new features to the root-mean-square of the radial ones on sample edges.

        The new features then enter the mixer on the scale of the old ones, so one
        learning rate suits both blocks. Arguments as in :meth:`forward`, over
        training edges; returns the factor (also kept in ``fb_scale``).
        """
        self.fb_scale.fill_(1.0)
        new = self.basis(lengths, envelope)
        rms_new = float(new.square().mean().sqrt())
        rms_old = float(radial.square().mean().sqrt())
        if not (rms_new > 0.0 and rms_old > 0.0):
            raise ValueError("cannot calibrate the edge mixer: no edge inside the cutoff")
        self.fb_scale.fill_(rms_old / rms_new)
        return float(self.fb_scale)

    def basis(self, lengths: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        """New features ``j1(z_n r / r_c) u(r)`` / max|j1|.

        Parameters
        ----------
        lengths, envelope : torch.Tensor
            [n_edges, 1] edge lengths (Angstrom) and cutoff envelope values.

        Returns
        -------
        torch.Tensor
            [n_edges, num_fb].
        """
        x = lengths * self.frequencies
        if torch.jit.is_scripting():
            j1 = spherical_bessel_j1(x)
        else:
            j1 = spherical_bessel_j1_eager(x)
        return j1 * (envelope / 0.4362) * self.fb_scale

    def forward(
        self, radial: torch.Tensor, lengths: torch.Tensor, envelope: torch.Tensor
    ) -> torch.Tensor:
        """Mixed radial features.

        Parameters
        ----------
        radial : torch.Tensor
            [n_edges, num_radial] backbone radial features (envelope included).
        lengths, envelope : torch.Tensor
            [n_edges, 1], see :meth:`basis`.

        Returns
        -------
        torch.Tensor
            [n_edges, num_radial]; equal to ``radial`` at initialisation.
        """
        if self.residual:
            return radial + self.basis(lengths, envelope) @ self.weight
        features = torch.cat([radial, self.basis(lengths, envelope)], dim=-1)
        return features @ self.weight


def tapered_es(z: torch.Tensor, beta: torch.Tensor, taper_power: int) -> torch.Tensor:
    """Tapered ES profile ``(1 - z^2)^p exp(beta (sqrt(1 - z^2) - 1))``, exactly 0 for ``|z| >= 1``.

    Plain differentiable ops (TorchScript and ``torch.compile`` use this form).
    Outside the support ``q = 1 - z^2`` is clamped to a tiny positive number
    ``q_0`` (1e-200 in float64, 1e-30 in float32): ``q_0^p`` underflows to exactly
    0, the square root never sees ``q <= 0`` (no NaN in any order of autograd),
    and the clamp's gradient is 0 there. Inside, ``q >= 1e-16`` is never clamped.

    Parameters
    ----------
    z : torch.Tensor
        Any shape, float32 or float64: ``(t - mu_k) / w``.
    beta : torch.Tensor
        0-d, ES shape parameter.
    taper_power : int
        ``p >= 2``.

    Returns
    -------
    torch.Tensor
        Same shape as ``z``, in [0, 1].
    """
    tiny = 1e-200 if z.dtype == torch.float64 else 1e-30
    q = torch.clamp(1.0 - z * z, min=tiny)
    return q**taper_power * torch.exp(torch.addcmul(-beta, beta, torch.sqrt(q)))


def tapered_es_slope(z: torch.Tensor, beta: torch.Tensor, taper_power: int) -> torch.Tensor:
    """``d phi / d z = -z (1 - z^2)^(p-1) exp(beta (s - 1)) (2 p + beta s)``, ``s = sqrt(1 - z^2)``.

    Plain differentiable ops, exactly 0 for ``|z| >= 1`` (also its derivative); arguments
    as in :func:`tapered_es`.
    """
    tiny = 1e-200 if z.dtype == torch.float64 else 1e-30
    r = 1.0 - z * z
    s = torch.sqrt(torch.clamp(r, min=tiny))
    taper = torch.clamp(r, min=0.0) ** (taper_power - 1)
    return -z * taper * torch.exp(torch.addcmul(-beta, beta, s)) * (2.0 * taper_power + beta * s)


class _TaperedES(torch.autograd.Function):
    """:func:`tapered_es` with its slope computed alongside, for eager autograd.

    The forward pass evaluates ``phi`` and, when ``z`` needs a gradient, ``dphi/dz``
    outside autograd (in-place, no graph); the first-order backward is then one
    product. With ``create_graph`` (force training) the backward recomputes the slope
    with :func:`tapered_es_slope`, plain ops, so every higher derivative is autograd's.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, beta: torch.Tensor, taper_power: int) -> torch.Tensor:  # noqa: D102
        q = torch.mul(z, z).neg_().add_(1.0).clamp_(min=0.0)  # 1 - z^2, 0 outside
        s = torch.sqrt(q)
        e = torch.mul(s, beta).sub_(beta).exp_()
        e.mul_(q if taper_power == 2 else q ** (taper_power - 1))  # exp(...) q^(p-1)
        phi = e * q
        ctx.taper_power = taper_power
        if ctx.needs_input_grad[0]:
            slope = s.mul_(beta).add_(2.0 * taper_power).mul_(e).mul_(z).neg_()
            ctx.save_for_backward(z, beta, slope)
        return phi

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        z, beta, slope = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: a differentiable slope
            slope = tapered_es_slope(z, beta, ctx.taper_power)
        return grad * slope, None, None


@torch.jit.unused
def tapered_es_eager(z: torch.Tensor, beta: torch.Tensor, taper_power: int) -> torch.Tensor:
    """:func:`tapered_es` via :class:`_TaperedES`: eager mode, same numbers, cheaper backward."""
    if torch.compiler.is_compiling():
        return tapered_es(z, beta, taper_power)
    return _TaperedES.apply(z, beta, taper_power)


class ESReadoutExpansion(torch.nn.Module):
    """Tapered exponential-of-semicircle expansion of scalar features -> site energy.

    ``phi_k(t)`` vanishes unless ``|t - mu_k| < w``. With ``h`` the spacing of the
    centres, a scalar in the cell ``mu_j <= t < mu_{j+1}`` therefore sees only the
    centres ``mu_{j+o}`` with offsets ``o`` in the open interval ``(-w/h, 1 + w/h)``,
    a window of ``m`` of the ``K`` functions (m = 4 of K = 8 at the default width
    ``w = 2h``). :meth:`forward` evaluates just that window and picks the matching
    weights, so its intermediates are [n, C, m] instead of [n, C, K]; the terms it
    leaves out are zero in the dense sum (value and derivatives).
    :meth:`basis` gives the dense [n, C, K] features.

    Parameters
    ----------
    num_channels : int
        Number of scalar (0e) node features ``x``.
    num_basis : int
        Number ``K`` of ES functions, centres ``mu_k`` evenly spaced on [-1, 1].
    tau : float
        Squashing scale of ``t = tanh(x / tau)`` (units of ``x``).
    beta : float
        ES shape parameter.
    width : float or None
        Half-width ``w`` of every ES function in ``t``; default twice the spacing
        of the centres.
    taper_power : int
        Exponent ``p`` of the ``(1 - z^2)^p`` taper (2 in spec: C^1; 3: C^2).
    adaptive : bool
        Learn each channel's squash centre and width, as moves in units of the
        calibrated width (zero at init). Trained scalars drift from those at
        initialisation; this lets the squash follow them (off in spec).
    """

    __constants__ = ["adaptive"]  # TorchScript compiles only the branch in use
    #: buffers added after the first model files, with the spec values those files computed with
    ADDED_BUFFERS = {"shift": 0.0, "scale": 1.0}

    def __init__(
        self,
        num_channels: int,
        num_basis: int = 8,
        tau: float = 1.0,
        beta: float = 4.0,
        width: float | None = None,
        taper_power: int = 2,
        adaptive: bool = False,
    ) -> None:
        super().__init__()
        if num_basis < 2 or tau <= 0 or taper_power < 2:
            raise ValueError("need num_basis >= 2, tau > 0 and taper_power >= 2")
        width = 4.0 / (num_basis - 1) if width is None else float(width)
        if width <= 0:
            raise ValueError(f"need width > 0, got {width}")
        self.num_channels = num_channels
        self.taper_power = int(taper_power)
        self.register_buffer("centers", torch.linspace(-1.0, 1.0, num_basis))
        self.register_buffer("tau", torch.tensor(float(tau)))
        self.register_buffer("beta", torch.tensor(float(beta)))
        self.register_buffer("width", torch.tensor(width))
        # per-channel centre and spread of the squash, t = tanh((x - shift) / (tau scale));
        # 0 and 1 give the spec's t = tanh(x / tau), calibrate() takes them from data
        self.register_buffer("shift", torch.zeros(num_channels))
        self.register_buffer("scale", torch.ones(num_channels))
        self.adaptive = bool(adaptive)
        if self.adaptive:
            # learned moves of the squash in units of its calibrated width (0 at init):
            # centre shift + tau scale step, width tau scale exp(log_width)
            self.step = torch.nn.Parameter(torch.zeros(num_channels))
            self.log_width = torch.nn.Parameter(torch.zeros(num_channels))
        self.weight = torch.nn.Parameter(torch.zeros(num_channels, num_basis))
        self._set_window()

    def _set_window(self) -> None:
        """Offsets ``o`` in ``(-w/h, 1 + w/h)``: first one and count (from the buffers)."""
        spacing = float(self.centers[1] - self.centers[0])
        ratio = float(self.width) / spacing
        # w / h = 2 stored in float32 may read 1.9999999 or 2.0000001; an integer ratio
        # within rounding is that integer (a term left out would be below (1e-5)^2)
        if abs(ratio - round(ratio)) < 64 * torch.finfo(self.width.dtype).eps * max(ratio, 1.0):
            ratio = float(round(ratio))
        self.window_start = math.floor(-ratio) + 1
        self.window_size = math.ceil(1.0 + ratio) - self.window_start

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: D105
        _fill_added_buffers(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._set_window()  # loaded centres or width define the window

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor, spread: float = 1.0) -> None:
        """Centre and scale each channel's squash on sample features.

        Sets ``shift`` to the mean and ``tau * scale`` to ``spread`` standard
        deviations of each channel of ``x`` [n_samples, num_channels], so the
        scalars of different atoms spread over the ES centres instead of sharing
        one (the spec's fixed ``tanh(x / tau)`` leaves a crystal's channels within a
        fraction of one centre spacing). The correction stays zero (its weights
        are untouched), so a model is its baseline before and after.
        """
        x = x.reshape(-1, self.num_channels)
        if x.shape[0] < 2 or not bool(torch.isfinite(x).all()):
            raise ValueError("ES calibration needs at least 2 finite samples per channel")
        std = x.std(dim=0)
        # a channel constant over the samples keeps the spec spread
        std = torch.where(std > 1e-8, std * float(spread), self.tau.expand_as(std))
        self.shift.copy_(x.mean(dim=0))
        self.scale.copy_(std / self.tau)

    def squash(self, x: torch.Tensor) -> torch.Tensor:
        """``t = tanh((x - centre) / width)`` per channel (spec: centre 0, width tau)."""
        width = self.tau * self.scale
        if self.adaptive:
            return torch.tanh(
                (x - (self.shift + width * self.step)) / (width * self.log_width.exp())
            )
        return torch.tanh((x - self.shift) / width)

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        """ES features ``phi_k(tanh(x / tau))``, dense.

        Parameters
        ----------
        x : torch.Tensor
            [n_nodes, num_channels] scalar node features.

        Returns
        -------
        torch.Tensor
            [n_nodes, num_channels, num_basis], zero outside each support.
        """
        t = self.squash(x).unsqueeze(-1)
        return tapered_es((t - self.centers) / self.width, self.beta, self.taper_power)

    def window_weights(self) -> torch.Tensor:
        """Weights of every window: row ``c * K + j`` holds ``A_{c, j+o}`` (0 beyond k in [0, K)).

        Returns
        -------
        torch.Tensor
            [num_channels * num_basis, window_size].
        """
        m = self.window_size
        padded = torch.nn.functional.pad(
            self.weight, [-self.window_start, self.window_start + m - 1]
        )
        return padded.unfold(1, m, 1).reshape(-1, m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Site-energy correction ``sum_{c,k} A_ck phi_k(t_c)``, over each scalar's window.

        Parameters
        ----------
        x : torch.Tensor
            [n_nodes, num_channels] scalar node features.

        Returns
        -------
        torch.Tensor
            [n_nodes]; exactly zero at initialisation.
        """
        t = self.squash(x)
        num_channels, num_basis = self.weight.shape
        spacing = self.centers[1] - self.centers[0]
        # cell j of every scalar (mu_j <= t < mu_{j+1}); no gradient flows through j
        cell = torch.floor((t.detach() - self.centers[0]) / spacing).long()
        cell = cell.clamp(0, num_basis - 1)
        z_cell = (t - self.centers.index_select(0, cell.view(-1)).view_as(t)) / self.width
        start = self.window_start
        steps = torch.arange(start, start + self.window_size, dtype=x.dtype, device=x.device)
        z = z_cell.unsqueeze(-1) - steps * (spacing / self.width)  # [n, C, m]: centres j + o
        rows = cell + num_basis * torch.arange(num_channels, device=x.device)
        weight = self.window_weights().index_select(0, rows.reshape(-1)).view(z.shape)
        if torch.jit.is_scripting():
            phi = tapered_es(z, self.beta, self.taper_power)
        else:
            phi = tapered_es_eager(z, self.beta, self.taper_power)
        return (phi * weight).sum((1, 2))
