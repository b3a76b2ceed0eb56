"""Graft PAN / PGS onto mace-torch files: identity, serving, reloading, bad input."""

import os

import numpy as np
import pytest
import torch
from _mace_files import MACE_RUN_TRAIN_FILE, mace_model, run_mace_train, save_mace_model
from ase.build import bulk

from pansim import PANCalculator, graft
from pansim.cli import main
from pansim.grafting import GraftError, _evaluate, load_mace_file
from pansim.testing import random_atoms

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {torch.float64: 1e-10, torch.float32: 2e-5}


def fresh_structures(symbols):
    """Structures other than those of the built-in check: a rattled cell and a cluster."""
    cell = random_atoms([symbols[k % len(symbols)] for k in range(5)], True, 11, 13.0, 1.7)
    cluster = random_atoms([symbols[(k + 2) % len(symbols)] for k in range(4)], False, 12)
    return [cell, cluster]


def assert_served_like(source, path, structures, dtype):
    """``PANCalculator`` on the grafted file gives the source's energy, forces, stress."""
    calc = PANCalculator(model=str(path), default_dtype=str(dtype).removeprefix("torch."))
    tol = TOL[dtype]
    for atoms in structures:
        ref = _evaluate(source, atoms, dtype)
        atoms = atoms.copy()
        atoms.calc = calc
        assert abs(atoms.get_potential_energy() - ref["energy"][0]) <= tol * max(
            1.0, abs(ref["energy"][0])
        )
        np.testing.assert_allclose(atoms.get_forces(), ref["forces"], rtol=0, atol=tol)
        if "stress" in ref:
            np.testing.assert_allclose(
                atoms.get_stress(voigt=False), ref["stress"][0], rtol=0, atol=tol
            )


def assert_identity_report(model, dtype):
    identity = model.graft_report["identity"]
    assert identity["dtype"] == str(dtype).removeprefix("torch.")
    assert set(identity["max_abs_diff"]) == {"periodic", "molecular"}
    assert "stress" in identity["max_abs_diff"]["periodic"]
    for diffs in identity["max_abs_diff"].values():
        assert max(diffs.values()) <= TOL[dtype]


@pytest.mark.slow  # about 30 s on 2 busy cores (two builds of a 2-interaction model)
def test_graft_file_written_by_mace_run_train(tmp_path, capsys):
    """The CLI grafts a mace_run_train model; the reloaded file reproduces the source."""
    out = tmp_path / "grafted.safetensors"
    before = dict(os.environ)
    args = ["graft", str(MACE_RUN_TRAIN_FILE), "--variant", "pan+pgs", "--out", str(out)]
    assert main(args) == 2
    assert "--trust-pickle" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--trust-pickle", "--option", "c_max=7.5"]) == 0
    text = capsys.readouterr().out
    assert "identity check, periodic: max |difference| energy" in text and str(out) in text
    assert dict(os.environ) == before  # mace's TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD did not leak
    from pansim.model_io import read_model_file

    config, meta, tensors = read_model_file(out)
    assert config["variant"] == "pan+pgs" and config["c_max"] == 7.5
    assert config["interaction"] == "RealAgnosticResidualInteractionBlock"  # mace_run_train default
    graft_meta = meta["provenance"]["graft"]
    assert graft_meta["source_class"] == "ScaleShiftMACE" and len(graft_meta["source_sha256"]) == 64
    assert any(k.startswith("pan_layers.") for k in tensors)
    assert any(k.startswith("readout_expansions.") for k in tensors)


ARCHITECTURES = {
    # name: (class, dtype, interactions, max_L, correlation, variant, extra options)
    "MACE-f32-1int-L0-c1": ("MACE", torch.float32, 1, 0, 1, "pgs", {}),
}
SLOW_ARCHITECTURES = {
    "MACE-f64-2int-L1-c2": ("MACE", torch.float64, 2, 1, 2, "pan", {}),
    "ScaleShift-f32-1int-L0-c1": ("ScaleShiftMACE", torch.float32, 1, 0, 1, "pan+pgs", {}),
    "ScaleShift-f64-3int-L2-c3": ("ScaleShiftMACE", torch.float64, 3, 2, 3, "pan+pgs", {}),
    "MACE-f32-2int-L0-c[3,1]": ("MACE", torch.float32, 2, 0, [3, 1], "pan+pgs", {}),
    "ScaleShift-f64-gaussian-Agnesi": (
        "ScaleShiftMACE", torch.float64, 2, 1, 2, "pan+pgs",
        {"radial_type": "gaussian", "distance_transform": "Agnesi", "use_reduced_cg": False},
    ),
}  # fmt: skip


def _graft_architecture(tmp_path, spec, cli=False):
    """Grafted, checked, reloaded and served by ``PANCalculator`` like the source."""
    cls_name, dtype, n_int, max_l, corr, variant, options = spec
    source = mace_model(cls_name, dtype, n_int, max_l, corr, **options)
    path = save_mace_model(source, tmp_path / "source.model")
    default = torch.get_default_dtype()
    before = dict(os.environ)
    out = tmp_path / "grafted.safetensors"
    if cli:
        args = ["graft", str(path), "--variant", variant, "--out", str(tmp_path / "grafted")]
        assert main(args) == 2 and not out.exists()  # a pickle without --trust-pickle
        assert main([*args, "--trust-pickle"]) == 0
        from pansim.model_io import load_model

        model = load_model(out)
    else:
        model = graft(path, variant, tmp_path / "grafted", trust_pickle=True)
        assert_identity_report(model, dtype)
    assert torch.get_default_dtype() == default
    assert dict(os.environ) == before  # mace's TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD did not leak
    assert next(model.parameters()).dtype == dtype
    assert model.pansim_config["variant"] == variant
    assert_served_like(source, out, fresh_structures(["H", "O", "Si"]), dtype)


@pytest.mark.parametrize("spec", ARCHITECTURES.values(), ids=ARCHITECTURES.keys())
def test_graft_identity_mace_constructors(tmp_path, spec, capsys):
    _graft_architecture(tmp_path, spec, cli=True)
    text = capsys.readouterr()
    assert "--trust-pickle" in text.err and "identity check, periodic: max |difference|" in text.out


@pytest.mark.slow
@pytest.mark.parametrize("spec", SLOW_ARCHITECTURES.values(), ids=SLOW_ARCHITECTURES.keys())
def test_graft_identity_more_architectures(tmp_path, spec):
    _graft_architecture(tmp_path, spec)


def test_graft_89_elements(tmp_path):
    """A foundation-model-sized element list (H..Ac) with random weights."""
    numbers = tuple(range(1, 90))
    source = mace_model("ScaleShiftMACE", torch.float64, 2, 1, 2, atomic_numbers=numbers)
    model = graft(save_mace_model(source, tmp_path / "mp.model"), "pan+pgs", trust_pickle=True)
    assert model.pansim_config["elements"][0] == "H" and len(model.pansim_config["elements"]) == 89
    assert_identity_report(model, torch.float64)
    check = [random_atoms(["Fe", "O", "Li", "Pt"], True, 4, 13.0), bulk("Au", cubic=True)]
    for atoms in check:
        ref, new = _evaluate(source, atoms, torch.float64), _evaluate(model, atoms, torch.float64)
        for key in ref:
            np.testing.assert_allclose(new[key], ref[key], rtol=1e-13, atol=1e-10)


@pytest.mark.slow
def test_graft_fresh_mace_run_train_output(tmp_path):
    """mace_run_train run now (about a minute on 2 busy cores), then grafted."""
    path = run_mace_train(tmp_path)
    model = graft(path, "pan", tmp_path / "g.safetensors", trust_pickle=True)
    assert_identity_report(model, torch.float64)


def test_graft_pansim_file_to_another_variant(tmp_path, tiny_model_factory):
    from pansim.model_io import save_model

    trained = save_model(tiny_model_factory("pan"), tmp_path / "trained.safetensors")
    model = graft(trained, "pan+pgs")  # PAN kept as trained, PGS added
    assert model.pansim_config["variant"] == "pan+pgs"
    assert_identity_report(model, torch.float64)
    with pytest.raises(GraftError, match="would drop its PAN modules"):
        graft(trained, "pgs")
    with pytest.raises(GraftError, match="unknown variant"):
        graft(trained, "pan+gps")


# -- bad input -----------------------------------------------------------------------------
def test_not_a_model_file(tmp_path):
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"this is not a model at all, just text\n" * 4)
    with pytest.raises(GraftError, match="not a MACE model file"):
        graft(junk, "pan", trust_pickle=True)
    empty = tmp_path / "empty.model"
    empty.write_bytes(b"")
    with pytest.raises(GraftError, match="empty or truncated"):
        graft(empty, "pan", trust_pickle=True)
    with pytest.raises(GraftError, match="no such file"):
        graft(tmp_path / "missing.model", "pan", trust_pickle=True)


def test_corrupt_file(tmp_path):
    data = MACE_RUN_TRAIN_FILE.read_bytes()
    cut = tmp_path / "cut.model"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(GraftError, match="corrupt or truncated"):
        graft(cut, "pan", trust_pickle=True)


def test_files_that_hold_no_mace_model(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "dict.model")
    with pytest.raises(GraftError, match="holds a dict, not a model"):
        graft(tmp_path / "dict.model", "pan", trust_pickle=True)
    torch.save(torch.nn.Linear(2, 2), tmp_path / "linear.model")
    with pytest.raises(GraftError, match="MACE variant Linear is not supported"):
        graft(tmp_path / "linear.model", "pan", trust_pickle=True)
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "x_compiled.model")
    with pytest.raises(GraftError, match="TorchScript"):
        graft(tmp_path / "x_compiled.model", "pan", trust_pickle=True)


def test_file_from_a_newer_mace_with_an_unknown_class(tmp_path, monkeypatch):
    from mace.modules import models

    class FutureMACE(torch.nn.Module):
        pass

    FutureMACE.__module__, FutureMACE.__qualname__ = models.__name__, "FutureMACE"
    monkeypatch.setattr(models, "FutureMACE", FutureMACE, raising=False)
    torch.save(FutureMACE(), tmp_path / "future.model")
    monkeypatch.delattr(models, "FutureMACE")
    with pytest.raises(GraftError, match="newer mace-torch"):
        graft(tmp_path / "future.model", "pan", trust_pickle=True)


def test_unknown_fields_and_unsupported_options_are_named(tmp_path):
    source = load_mace_file(MACE_RUN_TRAIN_FILE, trust_pickle=True)
    source.future_option = True  # what a newer mace-torch might add
    # (under a mace-torch older than the file's 0.3.16, that version's new fields are named too)
    with pytest.raises(GraftError, match=r"does not know: \[[^]]*'future_option'"):
        graft(source, "pan")
    repulsive = mace_model("ScaleShiftMACE", num_interactions=1, max_L=0, pair_repulsion=True)
    with pytest.raises(GraftError, match=r"pair_repulsion \(ZBL\)"):
        graft(repulsive, "pan")
