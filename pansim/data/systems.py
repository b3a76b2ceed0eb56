"""The reference systems: one :class:`System` spec per system, in one registry.

A :class:`System` holds everything pansim knows about a system, in one place:

- its **DFT settings** (``dft``: :class:`~pansim.data.settings.CrystalSettings`,
  docs/spec.md §2.1, or :class:`~pansim.data.settings.MoleculeSettings`, §2.2);
- its **structures**: a crystal's cells (:meth:`System.primitive`,
  :meth:`System.conventional`, built with ``ase.build.bulk`` at the lattice
  constant ``a``), a molecule's start geometry (:meth:`System.initial_geometry`);
- its **dataset recipe**: ``sampler(n, seed, start)``, ``make_job(atoms)`` (the
  labelling job with every setting), ``default_n``, ``split_unit``;
- where its **reference properties** live (:meth:`System.reference_dir`,
  :meth:`System.reference_files`);
- its **validation settings** (``liquid_K``: the temperature of the liquid run of
  ``pansim validate``).

:data:`SYSTEMS` is the registry; every other table of systems is a view of it:
``pansim.data.datasets.SYSTEMS`` (the systems with a dataset: ``pansim data``),
``workflows.validate.SYSTEMS`` (the crystals ``pansim validate`` runs),
``pansim.data.molecule_reference.MOLECULES``, and :data:`CRYSTALS` and
:data:`STRUCTURES` (the DFT crystals' settings and ``ase.build.bulk`` names, also
importable from :mod:`pansim.data.settings`, where they were defined before).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ase import Atoms
from ase.build import bulk

from pansim.data.settings import CrystalSettings, MoleculeSettings


def data_dir(path: str | Path | None = None) -> Path:
    """The datasets folder: ``path``, else ``$PANSIM_DATA_DIR``, else the repository's ``data/``."""
    if path is not None:
        return Path(path)
    env = os.environ.get("PANSIM_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data"


def packaged_reference_dir() -> Path:
    """``pansim/data/reference/properties``: reference properties shipped inside the package.

    For references the DFT pipeline does not make (the EMT demonstration ``ag-emt``).
    """
    return Path(__file__).parent / "reference" / "properties"


def reference_dir(name: str, root: str | Path | None = None) -> Path:
    """``data/<name>/reference``: where the reference builders write (any name)."""
    return data_dir(root) / name / "reference"


def reference_files(name: str, root: str | Path | None = None) -> list[Path]:
    """The reference-property files of ``name`` that ``pansim validate`` tries, in order.

    The packaged ``pansim/data/reference/properties/<name>.json``, then the DFT
    pipeline's ``data/<name>/reference/properties.json``.
    """
    return [
        packaged_reference_dir() / f"{name}.json",
        reference_dir(name, root) / "properties.json",
    ]


@dataclass(frozen=True)
class System:
    """One system: DFT settings, structures, dataset recipe, reference files, validation settings.

    Attributes
    ----------
    name : str
        Registry key (``si``, ``ethanol``, ``ag-emt``).
    kind : str
        ``"crystal"`` or ``"molecule"``.
    elements : tuple of str
        Elements the settings cover.
    default_n : int
        Configurations sampled by default (0 when the system has no dataset).
    sampler : callable or None
        ``sampler(n, seed, start) -> list[Atoms]``, deterministic; ``info`` carries
        the provenance. None: no dataset (a validation-only system).
    make_job : callable or None
        ``make_job(atoms) -> dict``, the labelling job with every setting.
    split_unit : str
        Provenance key whose value is the unit of splitting (a configuration, or
        a trajectory block for MD-sampled molecules).
    dft : CrystalSettings or MoleculeSettings or None
        The electronic-structure settings (docs/spec.md §2); None when the
        reference is not DFT (``ag-emt``).
    symbol, structure : str or None
        A crystal's ``ase.build.bulk`` name and crystal structure (``"LiF"``, ``"rocksalt"``).
    a : float or None
        A crystal's cubic lattice constant (A): the spec constant of its DFT settings.
    liquid_K : float or None
        Temperature (K) of ``pansim validate``'s liquid run; None: no liquid run.
    """

    name: str
    kind: str
    elements: tuple[str, ...]
    default_n: int = 0
    sampler: Callable[..., list[Atoms]] | None = None
    make_job: Callable[[Atoms], dict] | None = None
    split_unit: str = "config_id"
    dft: CrystalSettings | MoleculeSettings | None = None
    symbol: str | None = None
    structure: str | None = None
    a: float | None = None
    liquid_K: float | None = None

    def __post_init__(self):
        if self.kind not in ("crystal", "molecule"):
            raise ValueError(f"{self.name}: kind is 'crystal' or 'molecule', not {self.kind!r}")
        if isinstance(self.dft, CrystalSettings) and self.a != self.dft.lattice_constant:
            raise ValueError(f"{self.name}: a = {self.a} is not its DFT lattice constant")

    @property
    def has_dataset(self) -> bool:
        """Whether ``pansim data`` samples and labels this system."""
        return self.sampler is not None

    def cell(self, a: float | None = None, cubic: bool = False) -> Atoms:
        """The perfect crystal, primitive (or conventional cubic) cell, at ``a`` (default: own)."""
        if self.kind != "crystal":
            raise ValueError(f"{self.name} is a {self.kind}: it has no crystal cell")
        return bulk(self.symbol, self.structure, a=self.a if a is None else a, cubic=cubic)

    def primitive(self, a: float | None = None) -> Atoms:
        """Primitive cell (A), at the lattice constant ``a`` (default: the system's)."""
        return self.cell(a)

    def conventional(self, a: float | None = None) -> Atoms:
        """Conventional cubic cell (A), at the lattice constant ``a`` (default: the system's)."""
        return self.cell(a, cubic=True)

    def initial_geometry(self) -> Atoms:
        """A molecule's sampling start geometry (not yet relaxed)."""
        if self.kind != "molecule":
            raise ValueError(f"{self.name} is a {self.kind}, not a molecule")
        from pansim.data.molecules import initial_geometry

        return initial_geometry(self.name)

    def reference_dir(self, root: str | Path | None = None) -> Path:
        """``data/<name>/reference``: the reference builders' jobs and results."""
        return reference_dir(self.name, root)

    def reference_files(self, root: str | Path | None = None) -> list[Path]:
        """Where ``pansim validate`` looks for a crystal's reference properties, in order."""
        return reference_files(self.name, root)


def _crystal(
    settings: CrystalSettings, symbol: str, structure: str, *, liquid_K: float | None = None
) -> System:
    """A DFT-labelled crystal: its settings carry the lattice constant (docs/spec.md §2.1)."""
    name = settings.system

    def sampler(n, seed=0, start=0):
        from pansim.data.sampling import sample_crystal

        return sample_crystal(name, n, seed, start)

    def make_job(atoms: Atoms) -> dict:
        from pansim.data.labelers import crystal_job

        return crystal_job(atoms, settings, atoms.info["kpts"])

    return System(
        name,
        "crystal",
        settings.elements,
        300,
        sampler,
        make_job,
        dft=settings,
        symbol=symbol,
        structure=structure,
        a=settings.lattice_constant,
        liquid_K=liquid_K,
    )


def _molecule(name: str, elements: tuple[str, ...], n: int) -> System:
    """An MD-sampled molecule labelled with the settings of docs/spec.md §2.2."""
    settings = MoleculeSettings()

    def sampler(n, seed=0, start=0):
        from pansim.data.molecules import sample_molecule

        return sample_molecule(name, n, seed, start)

    def make_job(atoms: Atoms) -> dict:
        from pansim.data.labelers import molecule_job

        return molecule_job(atoms, settings, elements)

    return System(name, "molecule", elements, n, sampler, make_job, "block", dft=settings)


#: name -> System: every system pansim knows
SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        _crystal(
            CrystalSettings("si", ("Si",), 500.0, 0.30, 0.05, 5.47, 1687.0),
            "Si",
            "diamond",
            liquid_K=2000.0,
        ),
        _crystal(
            CrystalSettings("lif", ("Li", "F"), 700.0, 0.40, 0.01, 4.07, 1121.0),
            "LiF",
            "rocksalt",
            liquid_K=1450.0,  # 1.3 T_m, as for Ag (1600 K / 1235 K)
        ),
        _crystal(
            CrystalSettings("ag", ("Ag",), 450.0, 0.35, 0.10, 4.16, 1235.0),
            "Ag",
            "fcc",
            liquid_K=1600.0,
        ),
        _molecule("ethanol", ("C", "H", "O"), 700),
        _molecule("malonaldehyde", ("C", "H", "O"), 700),
        # demonstration system: Ag with ASE's EMT as the reference (EMT lattice constant);
        # its reference properties are packaged (scripts/make_emt_reference.py)
        System(
            "ag-emt", "crystal", ("Ag",), symbol="Ag", structure="fcc", a=4.064, liquid_K=1600.0
        ),
    )
}


def get_system(name: str) -> System:
    """The registered system ``name`` (case-insensitive), datasets or not."""
    try:
        return SYSTEMS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown system {name!r}; known: {', '.join(SYSTEMS)}") from None


#: the DFT crystals' settings (docs/spec.md §2.1), in the order of the table they came from
#: (``pansim data reference all`` queues them in this order)
CRYSTALS: dict[str, CrystalSettings] = {n: SYSTEMS[n].dft for n in ("ag", "si", "lif")}

#: DFT crystal -> (``ase.build.bulk`` name, crystal structure)
STRUCTURES: dict[str, tuple[str, str]] = {
    n: (SYSTEMS[n].symbol, SYSTEMS[n].structure) for n in CRYSTALS
}


def crystal_cell(system: str, a: float | None = None, cubic: bool = False) -> Atoms:
    """The perfect crystal of ``system``, primitive (or conventional) cell: :meth:`System.cell`.

    ``a`` is the lattice constant, by default the docs/spec.md §2.1 constant the datasets use.
    """
    return get_system(system).cell(a, cubic)
