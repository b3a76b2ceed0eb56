"""Backbone-agnostic scalar-pathway modules (pure torch): PAN pooling and PGS mixers.

Each module knows nothing of any backbone; an adapter in :mod:`pansim.backbones`
tells it where the l = 0 channels, the edge lengths and the readout are.
"""

from pansim.modules.pan import PANPooling
from pansim.modules.pgs import ESReadoutExpansion, FourierBesselEdgeMixer

__all__ = ["PANPooling", "FourierBesselEdgeMixer", "ESReadoutExpansion"]
