"""Validation workflows of pansim: one module per property, each usable from Python and the CLI.

- :mod:`workflows.eos`: relax, volume scan, Birch-Murnaghan fit;
- :mod:`workflows.elastic`: 6x6 elastic constants by stress-strain, VRH moduli, Born stability;
- :mod:`workflows.phonons`: phonopy finite displacements, bands, DOS, thermal properties;
- :mod:`workflows.md`: NVE/NVT/NPT with checkpoints, drift, temperature and RDF analysis;
- :mod:`workflows.repulsion`: compressed contacts and dimers against a reference curve;
- :mod:`workflows.validate`: all of them, model vs baseline vs DFT, in one report.

Each takes an ``Atoms`` and any ASE calculator, never modifies the ``Atoms``,
and returns a dataclass with units and provenance (``to_json``/``from_dict``).
"""
