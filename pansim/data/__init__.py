"""Reference data: sampling, DFT labelling (GPAW, PySCF), datasets and their provenance."""
