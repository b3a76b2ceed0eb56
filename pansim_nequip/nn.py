"""Graph modules that place pansim's PAN and PGS modules inside nequip models.

Each class here is glue only: it reads the fields of nequip's ``AtomicDataDict``
where a backbone keeps its l = 0 channels, edge lengths, envelope and readout,
and calls the backbone-agnostic modules of :mod:`pansim.modules` on them.

Fields used (nequip names): ``edge_index`` [2, n_edges] (row 0: centre ``i``,
row 1: neighbour ``j``), ``atom_types`` [n_nodes], ``normed_edge_lengths``
[n_edges, 1] (``r / r_c``), ``edge_cutoff`` [n_edges, 1] (the backbone's
polynomial envelope ``u(r)``), ``edge_embedding`` [n_edges, num_bessels]
(radial features), ``node_features``, ``edge_features``, ``atomic_energy``
[n_nodes, 1] and ``edge_energy`` [n_edges, 1].
"""

import torch
from e3nn.o3._irreps import Irrep, Irreps
from nequip.data import AtomicDataDict
from nequip.nn import GraphModuleMixin
from nequip.nn.interaction_block import InteractionBlock

from pansim.modules.pan import PANPooling
from pansim.modules.pgs import ESReadoutExpansion, FourierBesselEdgeMixer


class PANAmplitude(torch.nn.Module):
    """PAN amplitudes ``s_i`` from a nequip graph (docs/spec.md §1.1).

    Parameters
    ----------
    pan : PANPooling
        The backbone-agnostic module; ``pan.num_channels`` l = 0 channels.
    num_types : int
        Number of atom types (width of the one-hot species encoding).
    """

    def __init__(self, pan: PANPooling, num_types: int) -> None:
        super().__init__()
        self.pan = pan
        self.num_types = num_types

    def forward(self, data: AtomicDataDict.Type) -> torch.Tensor:
        """Amplitudes [n_nodes, num_channels], exactly 1 at initialisation."""
        envelope = data[AtomicDataDict.EDGE_CUTOFF_KEY]
        types = data[AtomicDataDict.ATOM_TYPE_KEY].view(-1)
        species = torch.nn.functional.one_hot(types, self.num_types).to(envelope.dtype)
        edge_index = data[AtomicDataDict.EDGE_INDEX_KEY]
        return self.pan(envelope, species, edge_index[1], edge_index[0])


class EdgeMixerModule(GraphModuleMixin, torch.nn.Module):
    """PGS edge mixer on the radial features ``edge_embedding`` (in place, same width).

    The j1 band uses the normalised length ``r / r_c`` (so ``r_max = 1`` for the
    mixer), which also honours nequip's per-edge-type cutoffs.

    Parameters
    ----------
    num_fb : int
        Number of extra j1 Fourier-Bessel functions.
    irreps_in : dict
        Irreps of the incoming fields (must contain ``edge_embedding``).
    mix : str
        ``"full"`` or ``"residual"``, see :class:`FourierBesselEdgeMixer`.
    """

    def __init__(self, num_fb: int, irreps_in: dict, mix: str = "full") -> None:
        super().__init__()
        self._init_irreps(
            irreps_in=irreps_in,
            required_irreps_in=[
                AtomicDataDict.EDGE_EMBEDDING_KEY,
                AtomicDataDict.NORM_LENGTH_KEY,
                AtomicDataDict.EDGE_CUTOFF_KEY,
            ],
        )
        num_radial = self.irreps_in[AtomicDataDict.EDGE_EMBEDDING_KEY].num_irreps
        self.mixer = FourierBesselEdgeMixer(num_radial, r_max=1.0, num_fb=num_fb, mix=mix)

    def forward(self, data: AtomicDataDict.Type) -> AtomicDataDict.Type:
        """Replace ``edge_embedding`` [n_edges, num_radial] by its mixed version."""
        data[AtomicDataDict.EDGE_EMBEDDING_KEY] = self.mixer(
            data[AtomicDataDict.EDGE_EMBEDDING_KEY],
            data[AtomicDataDict.NORM_LENGTH_KEY],
            data[AtomicDataDict.EDGE_CUTOFF_KEY],
        )
        return data


class ReadoutExpansionModule(GraphModuleMixin, torch.nn.Module):
    """PGS readout expansion: adds ``ES(features)`` to an energy field, in place.

    Parameters
    ----------
    expansion : ESReadoutExpansion
        Acts on the last ``expansion.num_channels`` scalar channels of ``feature_field``.
    feature_field : str
        Scalar (0e) features the readout sees (``node_features`` or ``edge_features``).
    energy_field : str
        Energy written by the readout, [n, 1] (``atomic_energy`` or ``edge_energy``).
    irreps_in : dict
        Irreps of the incoming fields.
    edge_envelope : bool
        For readouts on edges: multiply the correction by the envelope ``edge_cutoff``
        [n_edges, 1]. ``phi_k(tanh(0))`` is not zero, so without it an edge entering
        or leaving the cutoff sphere would switch a finite energy on or off.
    """

    def __init__(
        self,
        expansion: ESReadoutExpansion,
        feature_field: str,
        energy_field: str,
        irreps_in: dict,
        edge_envelope: bool = False,
    ) -> None:
        super().__init__()
        required = [feature_field, energy_field]
        if edge_envelope:
            required.append(AtomicDataDict.EDGE_CUTOFF_KEY)
        self._init_irreps(irreps_in=irreps_in, required_irreps_in=required)
        features = self.irreps_in[feature_field]
        if any(ir != Irrep("0e") for _, ir in features):
            raise ValueError(f"{feature_field} must hold scalars only, got {features}")
        self.first_channel = features.num_irreps - expansion.num_channels
        if self.first_channel < 0:
            raise ValueError(f"{feature_field} has fewer than {expansion.num_channels} channels")
        self.expansion = expansion
        self.feature_field = feature_field
        self.energy_field = energy_field
        self.edge_envelope = edge_envelope

    def forward(self, data: AtomicDataDict.Type) -> AtomicDataDict.Type:
        """Add the site-energy correction [n, 1] (zero at initialisation)."""
        x = data[self.feature_field]
        x = torch.narrow(x, 1, self.first_channel, x.size(1) - self.first_channel)
        correction = self.expansion(x).unsqueeze(-1)
        if self.edge_envelope:
            correction = correction * data[AtomicDataDict.EDGE_CUTOFF_KEY]
        data[self.energy_field] = data[self.energy_field] + correction
        return data


def scalar_slice(irreps: Irreps) -> tuple[int, int]:
    """Contiguous range ``[start, stop)`` of the 0e entries of sorted ``irreps``."""
    ranges, offset = [], 0
    for mul, ir in irreps:
        if ir == Irrep("0e"):
            ranges.append((offset, offset + mul * ir.dim))
        offset += mul * ir.dim
    if not ranges:
        raise ValueError(f"no 0e channels in {irreps}")
    if any(a[1] != b[0] for a, b in zip(ranges[:-1], ranges[1:], strict=True)):
        raise ValueError(f"0e channels of {irreps} are not contiguous")
    return ranges[0][0], ranges[-1][1]


class PANInteractionBlock(InteractionBlock):
    """NequIP's :class:`~nequip.nn.interaction_block.InteractionBlock` with PAN.

    The aggregated message ``m_i = sum_j TP(x_j, Y(r_ij), R(r_ij)) / avg_num_neighbors``
    (output of ``tp_scatter``) has its 0e channels multiplied by ``s_i``; the
    other channels, ``linear_2`` and the self-connection are unchanged. Made from
    a block that nequip built (:meth:`adopt`), so the backbone weights are nequip's.
    """

    scalar_start: int
    scalar_stop: int

    @classmethod
    def adopt(cls, block: InteractionBlock, amplitude: PANAmplitude) -> "PANInteractionBlock":
        """Turn ``block`` (in place: same object, same weights) into a PAN block."""
        start, stop = scalar_slice(block.tp_scatter.irreps_mid)
        if amplitude.pan.num_channels != stop - start:
            raise ValueError(f"PAN has {amplitude.pan.num_channels} channels, need {stop - start}")
        block.__class__ = cls
        block.amplitude = amplitude
        block.scalar_start, block.scalar_stop = start, stop
        return block

    def forward(self, data: AtomicDataDict.Type) -> AtomicDataDict.Type:
        """Copy of nequip 0.19.1 ``InteractionBlock.forward`` plus the PAN line (marked)."""
        if AtomicDataDict.LMP_MLIAP_DATA_KEY in data:
            num_local_nodes = self._get_mliap_num_local(data)
        else:
            num_local_nodes = AtomicDataDict.num_nodes(data)
        x = data[AtomicDataDict.NODE_FEATURES_KEY]
        if not self.is_first_layer:
            x = x[:num_local_nodes]
        sc = x  # placeholder for TorchScript; only used when self.sc is set
        if self.sc is not None:
            node_attrs = data[AtomicDataDict.NODE_ATTRS_KEY]
            if not self.is_first_layer:
                node_attrs = node_attrs[:num_local_nodes]
            sc = self.sc(x, node_attrs)
        x = self.linear_1(x)
        data[AtomicDataDict.NODE_FEATURES_KEY] = x
        data = self.avg_num_neighbors_norm(data)
        x = data[AtomicDataDict.NODE_FEATURES_KEY]
        if not self.is_first_layer:
            data[AtomicDataDict.NODE_FEATURES_KEY] = x
            data = self.ghost_exchange(data, ghost_included=False)
            x = data[AtomicDataDict.NODE_FEATURES_KEY]
        x = self.tp_scatter(
            x=x,
            edge_attr=data[AtomicDataDict.EDGE_ATTRS_KEY],
            edge_weight=self.edge_mlp(data[AtomicDataDict.EDGE_EMBEDDING_KEY]),
            edge_dst=data[AtomicDataDict.EDGE_INDEX_KEY][0],
            edge_src=data[AtomicDataDict.EDGE_INDEX_KEY][1],
        )[:num_local_nodes]
        # --- PAN: coordination-sensitive amplitude on the l = 0 aggregate ---
        s = self.amplitude(data)[:num_local_nodes]
        a, b = self.scalar_start, self.scalar_stop
        x = torch.cat([x[:, :a], x[:, a:b] * s, x[:, b:]], dim=-1)
        # ---------------------------------------------------------------------
        x = self.linear_2(x)
        if self.sc is not None:
            x = x + sc
        data[AtomicDataDict.NODE_FEATURES_KEY] = x
        return data


class PANEnvNormalization(torch.nn.Module):
    """Allegro's neighbour-sum normalisation followed by PAN on the l = 0 env channels.

    Allegro scatters the weighted edge environments ``sum_k w_ik Y(r_ik)`` of
    every centre ``i`` into ``node_features`` [n_nodes, C * D] (C tensor
    channels, D = (l_max + 1)^2, l = 0 first) and divides by
    ``avg_num_neighbors`` with one module, shared by all Allegro layers. This
    wrapper takes that module's place and multiplies the l = 0 entry of every
    channel by ``s_i`` (one value per channel); l > 0 entries are unchanged.

    Parameters
    ----------
    norm : torch.nn.Module
        Allegro's ``AvgNumNeighborsNorm``.
    amplitude : PANAmplitude
        With ``num_channels = C``.
    irreps_dim : int
        D, the dimension of the environment irreps.
    """

    def __init__(self, norm: torch.nn.Module, amplitude: PANAmplitude, irreps_dim: int) -> None:
        super().__init__()
        self.norm = norm
        self.amplitude = amplitude
        self.num_channels = amplitude.pan.num_channels
        self.irreps_dim = irreps_dim

    def forward(self, data: AtomicDataDict.Type) -> AtomicDataDict.Type:
        """Normalise ``node_features`` [n_nodes, C * D], then scale its l = 0 entries."""
        data = self.norm(data)
        x = data[AtomicDataDict.NODE_FEATURES_KEY]
        n = x.size(0)
        x = x.view(n, self.num_channels, self.irreps_dim)
        s = self.amplitude(data)[:n].unsqueeze(-1)
        x = torch.cat([x[:, :, :1] * s, x[:, :, 1:]], dim=-1)
        data[AtomicDataDict.NODE_FEATURES_KEY] = x.reshape(n, self.num_channels * self.irreps_dim)
        return data
