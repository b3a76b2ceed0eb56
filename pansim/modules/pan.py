"""PAN: Physics-Aware Neighborhood pooling (docs/spec.md §1.1).

A coordination-sensitive amplitude for the l = 0 channels of an aggregated
message. With ``u`` the backbone's smooth cutoff envelope and ``w(Z)`` a
learnable per-species weight (initialised to 1):

    c_i = sum_j w(Z_j) u(r_ij)
    s_i = 1 + tanh(MLP(g(c_i)))        one value per l = 0 channel

where ``g`` is a Gaussian basis on [0, c_max]. The last MLP layer starts at
zero, so ``s_i = 1`` exactly at initialisation. The module returns ``s``; the
backbone adapter multiplies the l = 0 channels of its messages by it.
"""

from __future__ import annotations

import torch


class PANPooling(torch.nn.Module):
    """Coordination-sensitive amplitude ``s_i`` for ``num_channels`` scalar channels.

    Parameters
    ----------
    num_species : int
        Number of species (width of the one-hot species encoding).
    num_channels : int
        Number of l = 0 channels to modulate.
    c_max : float
        Upper end of the Gaussian basis for the coordination (dimensionless,
        e.g. a high percentile of ``c_i`` over the training data).
    num_basis : int
        Number of Gaussians on [0, c_max].
    hidden : int
        Width of the hidden MLP layer.
    """

    def __init__(
        self,
        num_species: int,
        num_channels: int,
        c_max: float = 12.0,
        num_basis: int = 8,
        hidden: int = 16,
    ) -> None:
        super().__init__()
        if c_max <= 0 or num_basis < 2:
            raise ValueError(f"need c_max > 0 and num_basis >= 2, got {c_max}, {num_basis}")
        self.num_channels = num_channels
        self.species_weights = torch.nn.Parameter(torch.ones(num_species))
        self.register_buffer("centers", torch.linspace(0.0, float(c_max), num_basis))
        self.register_buffer("width", torch.tensor(float(c_max) / (num_basis - 1)))
        self.linear_1 = torch.nn.Linear(num_basis, hidden)
        self.linear_2 = torch.nn.Linear(hidden, num_channels)
        torch.nn.init.zeros_(self.linear_2.weight)
        torch.nn.init.zeros_(self.linear_2.bias)

    def coordination(
        self,
        envelope: torch.Tensor,
        species: torch.Tensor,
        sender: torch.Tensor,
        receiver: torch.Tensor,
    ) -> torch.Tensor:
        """Smooth coordination ``c_i = sum_j w(Z_j) u(r_ij)``.

        Parameters
        ----------
        envelope : torch.Tensor
            [n_edges] or [n_edges, 1], cutoff envelope ``u(r_ij)`` (1 at r=0, 0 at r_max).
        species : torch.Tensor
            [n_nodes, num_species] one-hot species of every node.
        sender, receiver : torch.Tensor
            [n_edges] int64 node indices ``j`` and ``i`` of every edge.

        Returns
        -------
        torch.Tensor
            [n_nodes] coordination numbers (dimensionless).
        """
        w = species @ self.species_weights  # [n_nodes]
        per_edge = w[sender] * envelope.reshape(-1)
        c = torch.zeros(species.shape[0], dtype=per_edge.dtype, device=per_edge.device)
        return c.index_add(0, receiver, per_edge)

    def amplitude(self, c: torch.Tensor) -> torch.Tensor:
        """``s(c) = 1 + tanh(MLP(g(c)))`` for coordinations ``c`` ([n]) -> [n, num_channels]."""
        basis = torch.exp(-(((c.unsqueeze(-1) - self.centers) / self.width) ** 2))
        hidden = torch.nn.functional.silu(self.linear_1(basis))
        return 1.0 + torch.tanh(self.linear_2(hidden))

    def curvature(self, points: int = 65, extent: float = 1.5) -> torch.Tensor:
        """Mean squared second derivative of ``s(c)`` on [0, extent * c_max] (a scalar).

        Finite differences on ``points`` evenly spaced coordinations, averaged over the
        grid and the channels. Used as an optional training penalty
        (``pan_curvature_weight``): a curved ``s(c)`` gives every l = 0 message a
        volume-dependent factor of its own curvature, which bends E(V) (docs/science.md).
        """
        c_hi = extent * float(self.centers[-1])
        c = torch.linspace(0.0, c_hi, points, dtype=self.width.dtype, device=self.width.device)
        s = self.amplitude(c)
        h = c_hi / (points - 1)
        second = (s[2:] - 2.0 * s[1:-1] + s[:-2]) / (h * h)
        return (second**2).mean()

    def forward(
        self,
        envelope: torch.Tensor,
        species: torch.Tensor,
        sender: torch.Tensor,
        receiver: torch.Tensor,
    ) -> torch.Tensor:
        """Amplitudes ``s_i`` (arguments as in :meth:`coordination`).

        Returns
        -------
        torch.Tensor
            [n_nodes, num_channels], ``1 + tanh(MLP(basis(c_i)))``, in (0, 2).
        """
        c = self.coordination(envelope, species, sender, receiver)
        return self.amplitude(c)
