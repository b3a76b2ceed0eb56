"""Item 3 of issue 7: PAN's c_max from the training data, as on the MACE route."""

import numpy as np
import pytest
import torch
from ase.io import read, write
from nequip.data import AtomicDataDict, CommonDataStatisticsManager
from nequip.data.dataset import ASEDataset
from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform
from nequip.utils.global_state import set_global_state
from pansim.testing import random_atoms
from pansim_nequip.stats import PANDataStatisticsManager, Percentile

from _data import emt_frames, pansim_c_max
from _tiny import build

R_MAX, P = 4.0, 6


def labelled_molecules(n):
    frames = []
    for k in range(n):
        atoms = random_atoms("C2H6O", pbc=False, seed=k, volume_per_atom=8.0, min_distance=0.9)
        atoms.info["REF_energy"] = float(k)
        atoms.arrays["REF_forces"] = np.zeros((len(atoms), 3))
        frames.append(atoms)
    return frames


def nequip_statistics(manager, frames, path, type_names):
    set_global_state()  # float64 data, as in nequip-train
    write(path, frames, format="extxyz")
    transforms = [
        ChemicalSpeciesToAtomTypeMapper(
            model_type_names=type_names,
            chemical_species_to_atom_type_map={t: t for t in type_names},
        ),
        NeighborListTransform(r_max=R_MAX),
    ]
    keys = {"REF_energy": AtomicDataDict.TOTAL_ENERGY_KEY, "REF_forces": AtomicDataDict.FORCE_KEY}
    dataset = ASEDataset(str(path), transforms=transforms, key_mapping=keys)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=3, collate_fn=AtomicDataDict.batched_from_list
    )  # batches of several graphs: the batched edge path is what nequip-train uses
    return manager.get_statistics(loader)


@pytest.mark.parametrize(
    ("frames", "type_names"),
    [(emt_frames(7, seed=4), ["Cu"]), (labelled_molecules(5), ["C", "H", "O"])],
    ids=["periodic", "molecules"],
)
def test_c_max_matches_the_mace_route(frames, type_names, tmp_path):
    manager = PANDataStatisticsManager(R_MAX, P, 99.0, type_names=type_names)
    stats = nequip_statistics(manager, frames, tmp_path / "train.extxyz", type_names)
    written = read(tmp_path / "train.extxyz", ":")  # the file rounds positions to 1e-8 A
    expected = pansim_c_max(written, R_MAX, P, 99.0)
    assert expected > 1.0
    assert stats["c_max"] == pytest.approx(expected, rel=1e-12)
    # nequip's common statistics come out unchanged next to it
    common = CommonDataStatisticsManager(type_names=type_names)
    reference = nequip_statistics(common, frames, tmp_path / "train.extxyz", type_names)
    assert set(reference) <= set(stats)
    for name, value in reference.items():
        assert plain(stats[name]) == pytest.approx(plain(value), rel=1e-12), name


def plain(value):
    """A statistic as floats (nequip gives floats, 0-d tensors and per-type dicts)."""
    return {k: float(v) for k, v in value.items()} if isinstance(value, dict) else float(value)


def test_percentile_is_floored_and_refuses_bad_percentiles():
    metric = Percentile(99.0)
    metric.update(torch.zeros(5))
    assert float(metric.compute()) == 1.0
    with pytest.raises(ValueError, match="percentile"):
        Percentile(101.0)


@pytest.mark.parametrize("backbone", ["nequip", "allegro"])
def test_builder_c_max_reaches_every_pan(backbone):
    model = build(backbone, "pan", c_max=7.25)
    centres = [b for n, b in model.named_buffers() if n.endswith("pan.centers")]
    assert centres and all(float(c[-1]) == 7.25 for c in centres)
