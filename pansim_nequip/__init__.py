"""pansim_nequip: PAN and PGS (pansim.modules) on NequIP and Allegro, as a nequip extension.

Model builders, referenced from nequip's Hydra configs by ``_target_``:

- :func:`pansim_nequip.model.NequIPPANModel` (arguments of
  ``nequip.model.NequIPGNNModel`` plus ``variant`` and the pansim module options);
- :func:`pansim_nequip.model.AllegroPANModel` (arguments of
  ``allegro.model.AllegroModel`` plus the same).

nequip loads this package on ``import nequip`` (entry point group
``nequip.extension``); nothing heavy is imported here, so that import stays cheap
and free of import cycles.
"""

__version__ = "0.1.0"
