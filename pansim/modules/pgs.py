"""PGS: Physics-Guided Spectral mixers (SPEC 1.2).

Two independent parts:

:class:`FourierBesselEdgeMixer`
    Appends ``n_fb`` order-1 spherical Bessel functions at their zeros,
    ``j1(z_{1,n} r / r_c) * u(r)``, to the backbone's radial edge features and
    mixes old and new with a linear map that starts as identity on the old
    features and zero on the new ones (so the output equals the input at init).
:class:`ESReadoutExpansion`
    Squashes each scalar node feature to ``t = tanh(x / tau)``, expands it in
    ``K`` tapered exponential-of-semicircle functions
    ``phi_k = (1 - z^2)^p exp(beta (sqrt(1 - z^2) - 1))``, ``z = (t - mu_k) / w``
    (zero for ``|z| >= 1``), and returns a per-channel linear map of them
    (zero at init), a site-energy correction.

With the default taper power ``p = 2`` (SPEC) ``phi_k`` is C^1 with a bounded
second derivative; ``p = 3`` makes it C^2. Both are NaN-free to any order of
autograd: the square root only ever sees a strictly positive argument.
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
    """

    def __init__(self, num_radial: int, r_max: float, num_fb: int = 8) -> None:
        super().__init__()
        self.num_radial = num_radial
        zeros = torch.tensor(spherical_bessel_j1_zeros(num_fb))
        self.register_buffer("frequencies", zeros / float(r_max))  # 1/Angstrom
        weight = torch.zeros(num_radial + num_fb, num_radial)
        weight[:num_radial] = torch.eye(num_radial)
        self.weight = torch.nn.Parameter(weight)

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
        return spherical_bessel_j1(lengths * self.frequencies) * (envelope / 0.4362)

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
        features = torch.cat([radial, self.basis(lengths, envelope)], dim=-1)
        return features @ self.weight


class ESReadoutExpansion(torch.nn.Module):
    """Tapered exponential-of-semicircle expansion of scalar features -> site energy.

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
        Exponent ``p`` of the ``(1 - z^2)^p`` taper (2 in SPEC: C^1; 3: C^2).
    """

    def __init__(
        self,
        num_channels: int,
        num_basis: int = 8,
        tau: float = 1.0,
        beta: float = 4.0,
        width: float | None = None,
        taper_power: int = 2,
    ) -> None:
        super().__init__()
        if num_basis < 2 or tau <= 0 or taper_power < 2:
            raise ValueError("need num_basis >= 2, tau > 0 and taper_power >= 2")
        width = 4.0 / (num_basis - 1) if width is None else float(width)
        self.num_channels = num_channels
        self.taper_power = int(taper_power)
        self.register_buffer("centers", torch.linspace(-1.0, 1.0, num_basis))
        self.register_buffer("tau", torch.tensor(float(tau)))
        self.register_buffer("beta", torch.tensor(float(beta)))
        self.register_buffer("width", torch.tensor(width))
        self.weight = torch.nn.Parameter(torch.zeros(num_channels, num_basis))

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        """ES features ``phi_k(tanh(x / tau))``.

        Parameters
        ----------
        x : torch.Tensor
            [n_nodes, num_channels] scalar node features.

        Returns
        -------
        torch.Tensor
            [n_nodes, num_channels, num_basis], zero outside each support.
        """
        t = torch.tanh(x / self.tau).unsqueeze(-1)
        z = (t - self.centers) / self.width
        q = 1.0 - z * z
        inside = q > 0.0
        q_safe = torch.where(inside, q, torch.ones_like(q))  # sqrt never sees q <= 0
        phi = q_safe**self.taper_power * torch.exp(self.beta * (torch.sqrt(q_safe) - 1.0))
        return torch.where(inside, phi, torch.zeros_like(phi))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Site-energy correction ``sum_{c,k} A_ck phi_k(t_c)``.

        Parameters
        ----------
        x : torch.Tensor
            [n_nodes, num_channels] scalar node features.

        Returns
        -------
        torch.Tensor
            [n_nodes]; exactly zero at initialisation.
        """
        return torch.einsum("nck,ck->n", self.basis(x), self.weight)
