"""Helpers that behave the same on every supported ASE version (public).

``thermalize(atoms, temperature_K, rng=None)``: Maxwell-Boltzmann momenta, with
the same random draws on ASE 3.23 to 3.29+.
"""

from pansim._compat import thermalize

__all__ = ["thermalize"]
