"""MACE adapter: docs/spec.md §1.3 invariants for every variant, periodic, open and mixed."""

import json

import numpy as np
import pytest
import torch
from _tiny_mace import R_MAX, STRUCTURES, TINY, tiny_model
from _tiny_models import build_tiny

from pansim.backbones import VARIANTS, build_model
from pansim.model_io import default_dtype
from pansim.testing import (
    assert_forces_fd,
    assert_identity_at_init,
    assert_invariance,
    assert_jit_matches,
    assert_smooth_cutoff,
    assert_stress_fd,
    assert_twice_differentiable,
    model_evaluator,
    model_graph,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_identity_at_init(init_models, name):
    models = [init_models[v] for v in VARIANTS]
    assert_identity_at_init(models, STRUCTURES[name](), rtol=0.0, atol=1e-13)


def test_trained_variants_differ(trained_models):
    """The modules are active once their weights move: variants no longer agree."""
    atoms = STRUCTURES["bulk"]()
    ref = model_evaluator(trained_models["baseline"])(atoms)
    for variant in ("pan", "pgs", "pan+pgs"):
        got = model_evaluator(trained_models[variant])(atoms)
        assert abs(got["energy"] - ref["energy"]) > 1e-4, variant
        assert np.abs(got["forces"] - ref["forces"]).max() > 1e-5, variant


def test_identical_backbone_weights(init_models):
    base = init_models["baseline"].state_dict()
    for variant in VARIANTS:
        state = init_models[variant].state_dict()
        for key, value in base.items():
            assert torch.equal(state[key], value), (variant, key)
    extra = set(init_models["pan+pgs"].state_dict()) - set(base)
    assert any("pan_layers" in k for k in extra) and any("edge_mixer" in k for k in extra)
    assert any("readout_expansions" in k for k in extra)


@pytest.mark.parametrize("variant", VARIANTS)
def test_invariance(trained_models, variant, structure):
    assert_invariance(model_evaluator(trained_models[variant]), structure)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ["bulk", "cluster"])
def test_forces_are_energy_gradient(trained_models, variant, name):
    assert_forces_fd(model_evaluator(trained_models[variant]), STRUCTURES[name](), directions=2)


@pytest.mark.parametrize("variant", VARIANTS)
def test_stress_is_strain_derivative(trained_models, variant):
    assert_stress_fd(model_evaluator(trained_models[variant]), STRUCTURES["bulk"]())


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ["bulk", "cluster"])
def test_smooth_across_cutoff(trained_models, variant, name):
    assert_smooth_cutoff(model_evaluator(trained_models[variant]), STRUCTURES[name](), R_MAX)


@pytest.mark.parametrize("variant", VARIANTS)
def test_twice_differentiable(trained_models, variant):
    from pansim.training.trainer import is_added_parameter

    model = trained_models[variant]
    extra = [n for n, _ in model.named_parameters() if is_added_parameter(n)]
    params = extra[:3] if extra else None
    assert_twice_differentiable(model, STRUCTURES["bulk"](), parameters=params)


def test_twice_differentiable_open(trained_models):
    assert_twice_differentiable(trained_models["pan+pgs"], STRUCTURES["cluster"]())


@pytest.mark.parametrize("variant", VARIANTS)
def test_torchscript_matches_eager(trained_models, variant):
    assert_jit_matches(trained_models[variant], STRUCTURES["bulk"](), rtol=1e-12, atol=1e-13)


def test_baseline_forward_is_mace_forward(trained_models):
    """The adapter's forward reproduces ScaleShiftMACE.forward on the same weights."""
    from mace.modules.models import ScaleShiftMACE

    model = trained_models["baseline"]
    data = model_graph(model, STRUCTURES["bulk"]())
    ours = model(dict(data), compute_stress=True)
    theirs = ScaleShiftMACE.forward(model, dict(data), compute_stress=True)
    for key in ("energy", "node_energy", "forces", "stress"):
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-12, atol=1e-13)


def test_contract_shapes_and_batching(trained_models):
    from pansim.graph import atoms_to_graph, collate

    model = trained_models["pan+pgs"]
    structures = [STRUCTURES["bulk"](), STRUCTURES["cluster"]()]
    z = model.atomic_numbers.tolist()
    batch = collate([atoms_to_graph(a, z, R_MAX) for a in structures])
    out = model(batch, compute_stress=True)
    n = sum(len(a) for a in structures)
    assert out["energy"].shape == (2,) and out["node_energy"].shape == (n,)
    assert out["forces"].shape == (n, 3) and out["stress"].shape == (2, 3, 3)
    torch.testing.assert_close(
        out["energy"], torch.stack([out["node_energy"][:5].sum(), out["node_energy"][5:].sum()])
    )
    assert torch.all(out["stress"][1] == 0)  # no cell, no stress
    for k, atoms in enumerate(structures):
        single = model_evaluator(model)(atoms)
        np.testing.assert_allclose(out["energy"][k].item(), single["energy"], rtol=1e-12)
    assert model(batch, compute_force=False)["forces"] is None
    assert model(batch)["stress"] is None


def test_forward_does_not_touch_inputs(trained_models):
    model = trained_models["pan"]
    data = model_graph(model, STRUCTURES["bulk"]())
    before = {k: v.clone() for k, v in data.items()}
    model(data, compute_stress=True, training=True)
    assert set(data) == set(before) and not data["positions"].requires_grad
    for key, value in before.items():
        assert torch.equal(data[key], value)


def test_training_mode_gives_differentiable_forces(trained_models):
    model = trained_models["pan+pgs"]
    out = model(model_graph(model, STRUCTURES["bulk"]()), training=True, compute_stress=True)
    assert out["forces"].requires_grad and out["stress"].requires_grad


def test_config_rebuilds_the_model(init_models):
    model = init_models["pan+pgs"]
    config = json.loads(json.dumps(model.pansim_config))
    assert config["variant"] == "pan+pgs" and config["elements"] == ["Si", "O"]
    with default_dtype(torch.float64):
        again = build_model(**config)
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key


def test_build_leaves_rng_alone():
    state = torch.random.get_rng_state()
    tiny_model("pan")
    assert torch.equal(state, torch.random.get_rng_state())


def test_atomic_energies_by_symbol():
    model = build_model(
        variant="baseline", elements=["O", "Si"], r_max=R_MAX,
        **{**TINY, "atomic_energies": {"Si": -1.5, "O": -2.0}},
    )  # fmt: skip
    assert model.atomic_numbers.tolist() == [8, 14]
    assert model.pansim_config["atomic_energies"] == [-2.0, -1.5]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variant": "pan+foo"}, "unknown variant"),
        ({"num_chanels": 8}, "unknown MACE hyperparameter"),
        ({"elements": ["Si", "Si"]}, "duplicates"),
        ({"elements": ["Xx"]}, "unknown element"),
        ({"atomic_energies": [1.0]}, "atomic_energies"),
        ({"atomic_energies": {"Si": 1.0}}, "lacks element"),
        ({"c_max": -1.0}, "c_max"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"variant": "pan", "elements": ["Si", "O"], "r_max": R_MAX, **TINY, **kwargs}
    with pytest.raises(ValueError, match=message):
        build_model(**args)


def test_forces_under_no_grad(trained_models):
    model = trained_models["pan+pgs"]
    data = model_graph(model, STRUCTURES["bulk"]())
    ref = model(dict(data), compute_stress=True)
    with torch.no_grad():
        out = model(dict(data), compute_stress=True)
    torch.testing.assert_close(out["forces"], ref["forces"], rtol=0, atol=0)
    torch.testing.assert_close(out["stress"], ref["stress"], rtol=0, atol=0)


def test_flops_overhead_at_production_like_sizes():
    """docs/spec.md §1.3 invariant 5: pan+pgs adds at most 5% FLOPs (forward + forces).

    Default sizes except correlation 2 and max_ell 2 (cheaper to build); the
    benchmark ``benchmarks/flops.py`` measures the full defaults on 64 atoms.
    """
    from ase.build import bulk
    from torch.utils.flop_counter import FlopCounterMode

    atoms = bulk("Si", "diamond", a=5.47, cubic=True)
    atoms.rattle(0.02, seed=0)
    counts = {}
    for variant in ("baseline", "pan+pgs"):
        model = build_model(
            variant=variant, elements=["Si"], r_max=5.0, seed=0, correlation=2, max_ell=2
        )
        data = model_graph(model, atoms, dtype=torch.float32)
        with FlopCounterMode(display=False) as counter:
            model(data)
        counts[variant] = counter.get_total_flops()
    assert counts["baseline"] > 0
    assert counts["pan+pgs"] / counts["baseline"] <= 1.05


def test_jit_matches_on_a_batch(trained_models):
    from pansim.graph import atoms_to_graph, collate

    model = trained_models["pan+pgs"]
    z = model.atomic_numbers.tolist()
    batch = collate([atoms_to_graph(STRUCTURES[k](), z, R_MAX) for k in ("bulk", "slab")])
    assert_jit_matches(model, batch, rtol=1e-12, atol=1e-13)


def test_pan_scales_only_the_scalar_channels(trained_models):
    from pansim.backbones.mace import InteractionAdapter

    layer = trained_models["pan"].interactions[0]
    assert isinstance(layer, InteractionAdapter)
    g = torch.Generator().manual_seed(0)
    message = torch.randn(4, 8, 9, generator=g, dtype=torch.float64)
    species = torch.eye(2, dtype=torch.float64)[torch.tensor([0, 1, 1, 0])]
    edge_index = torch.tensor([[0, 1, 2, 3, 0], [1, 0, 3, 2, 2]])
    envelope = torch.rand(5, 1, generator=g, dtype=torch.float64)
    out = layer.scale(message, envelope, species, edge_index)
    s = layer.pan(envelope, species, edge_index[0], edge_index[1])
    assert torch.equal(out[..., 1:], message[..., 1:])
    torch.testing.assert_close(out[..., 0], message[..., 0] * s, rtol=0, atol=0)
    assert not torch.allclose(s, torch.ones_like(s))
    # a LAMMPS domain: messages of the first (local) atoms, species of every atom
    local = layer.scale(message[:3], envelope, species, edge_index)
    assert torch.equal(local, out[:3])


def test_readout_expansion_sees_only_scalars(trained_models):
    readout = trained_models["pgs"].readouts[0]
    feats = torch.randn(3, 8 * 4, dtype=torch.float64)  # 8x0e + 8x1o
    other = feats.clone()
    other[:, 8:] = torch.randn(3, 8 * 3, dtype=torch.float64)

    def correction(x):
        return readout(x) - readout.block(x)

    torch.testing.assert_close(correction(feats), correction(other), rtol=0, atol=0)
    assert correction(feats).abs().max() > 0


def test_cutoff_envelope_is_computed_only_for_modules_that_read_it():
    """The baseline skips the envelope (only PAN and the PGS edge mixer read it)."""
    assert {v: tiny_model(v).uses_envelope for v in VARIANTS} == {
        "baseline": False, "pan": True, "pgs": True, "pan+pgs": True,
    }  # fmt: skip
    readout_only = build_tiny(
        variant="pgs", elements=["Si", "O"], r_max=R_MAX, seed=0, pgs_edge=False, **TINY
    )
    assert readout_only.uses_envelope is False
    calls = []
    model = tiny_model("baseline")
    model.radial_embedding.cutoff_fn.register_forward_hook(lambda *args: calls.append(1))
    model(dict(model_graph(model, STRUCTURES["bulk"]())))
    assert len(calls) == 1  # MACE's own radial embedding only


# -- the calibrated scalar pathway (options beside spec: docs/calibrated_pgs.md) ---------
CALIBRATED = {"pgs_edge_mix": "residual", "pgs_adaptive_squash": True}


@pytest.fixture(scope="module")
def calibrated_models():
    """pan+pgs with the calibration options, calibrated on random structures; at init and moved."""
    import copy

    from pansim.modules.calibration import calibrate_scalar_pathway
    from pansim.testing import perturb_parameters

    model = build_tiny(
        variant="pan+pgs", elements=["Si", "O"], r_max=R_MAX, seed=0, **TINY, **CALIBRATED
    )
    graphs = [model_graph(model, make()) for make in STRUCTURES.values()]
    report = calibrate_scalar_pathway(model, graphs, lambda m, g: m(g, compute_force=False))
    assert report["edge_mixer"]["fb_scale"] != 1.0
    return model, perturb_parameters(copy.deepcopy(model), scale=0.2, seed=1)


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_calibrated_identity_at_init(init_models, calibrated_models, name):
    models = [init_models["baseline"], calibrated_models[0]]
    assert_identity_at_init(models, STRUCTURES[name](), rtol=0.0, atol=1e-13)


def test_calibrated_invariants(calibrated_models, structure):
    trained = calibrated_models[1]
    evaluate = model_evaluator(trained)
    assert_invariance(evaluate, structure)
    assert_forces_fd(evaluate, STRUCTURES["bulk"](), directions=2)
    assert_stress_fd(evaluate, STRUCTURES["bulk"]())
    assert_smooth_cutoff(evaluate, STRUCTURES["cluster"](), R_MAX)
    params = [n for n, _ in trained.named_parameters() if "step" in n or "log_width" in n]
    assert_twice_differentiable(trained, STRUCTURES["bulk"](), parameters=params[:2])
    assert_jit_matches(trained, STRUCTURES["bulk"](), rtol=1e-12, atol=1e-13)


def test_calibrated_model_file_round_trip(calibrated_models, tmp_path):
    from pansim.model_io import load_model, save_model

    trained = calibrated_models[1]
    loaded = load_model(save_model(trained, tmp_path / "m.safetensors"))
    atoms = STRUCTURES["bulk"]()
    want, got = model_evaluator(trained)(atoms), model_evaluator(loaded)(atoms)
    assert got["energy"] == pytest.approx(want["energy"], rel=1e-12, abs=1e-12)


# -- mace's own forward and blocks; the state dict keeps mace's and the files' names -----
def test_the_model_runs_mace_forward_and_blocks(init_models):
    """No copy of mace's forward: PAN / PGS sit in adapters around mace's own blocks."""
    from mace.modules import blocks
    from mace.modules.models import ScaleShiftMACE

    from pansim.backbones.mace import (
        ADAPTERS,
        PANMACE,
        InteractionAdapter,
        RadialAdapter,
        ReadoutAdapter,
    )

    assert PANMACE._mace_forward.__code__ is ScaleShiftMACE.forward.__code__
    model = init_models["pan+pgs"]
    assert isinstance(model.radial_embedding, RadialAdapter)
    assert isinstance(model.radial_embedding.block, blocks.RadialEmbeddingBlock)
    for layer in model.interactions:
        assert isinstance(layer, InteractionAdapter)
        assert isinstance(layer.block, blocks.RealAgnosticResidualInteractionBlock)
    assert all(isinstance(readout, ReadoutAdapter) for readout in model.readouts)
    assert not any(isinstance(m, ADAPTERS) for m in init_models["baseline"].modules())
    assert not isinstance(init_models["pgs"].interactions[0], ADAPTERS)  # no PAN, no adapter


def test_state_dict_keeps_the_model_file_names_and_order(init_models):
    model, base = init_models["pan+pgs"], init_models["baseline"]
    assert model.state_dict_renames() == [
        ("radial_embedding.block", "radial_embedding"),
        ("radial_embedding.edge_mixer", "edge_mixer"),
        ("interactions.0.block", "interactions.0"),
        ("interactions.0.pan", "pan_layers.0.pan"),
        ("interactions.1.block", "interactions.1"),
        ("interactions.1.pan", "pan_layers.1.pan"),
        ("readouts.0.block", "readouts.0"),
        ("readouts.0.expansion", "readout_expansions.0.expansion"),
        ("readouts.1.block", "readouts.1"),
        ("readouts.1.expansion", "readout_expansions.1.expansion"),
    ]
    assert "interactions.0.block.linear.weight" in dict(model.named_parameters())
    keys, mace_keys = list(model.state_dict()), list(base.state_dict())
    assert keys[: len(mace_keys)] == mace_keys  # mace's names, in mace's order
    groups = [k.split(".")[0] for k in keys[len(mace_keys) :]]
    assert groups == sorted(groups, key=["edge_mixer", "pan_layers", "readout_expansions"].index)
    assert keys[len(mace_keys)] == "edge_mixer.weight"
    assert model.state_dict_name("interactions.1.pan.linear_1") == "pan_layers.1.pan.linear_1"


def test_state_dict_loads_nested_and_from_module_paths(trained_models):
    model = trained_models["pan+pgs"]
    want = model.state_dict()
    fresh = tiny_model("pan+pgs", seed=3)
    fresh.load_state_dict(want, strict=True)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in want.items())
    outer = torch.nn.ModuleDict({"module": tiny_model("pan+pgs", seed=4)})  # e.g. DDP's prefix
    state = torch.nn.ModuleDict({"module": model}).state_dict()
    assert "module.pan_layers.0.pan.species_weights" in state
    outer.load_state_dict(state, strict=True)
    assert all(torch.equal(outer["module"].state_dict()[k], v) for k, v in want.items())
    by_path = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    again = tiny_model("pan+pgs", seed=5)
    again.load_state_dict(by_path, strict=True)
    assert all(torch.equal(again.state_dict()[k], v) for k, v in want.items())


def test_state_dict_parameters_follow_the_file_order(init_models):
    from pansim.backbones import state_dict_parameters
    from pansim.training.trainer import is_added_parameter

    model = init_models["pan+pgs"]
    named = state_dict_parameters(model)
    assert [id(p) for _, p in named] != [id(p) for p in model.parameters()]  # tree order differs
    assert {id(p) for _, p in named} == {id(p) for p in model.parameters()}
    names = [n for n, _ in named]
    first_added = next(i for i, n in enumerate(names) if is_added_parameter(n))
    assert all(is_added_parameter(n) for n in names[first_added:])
    assert names[first_added:][:2] == ["edge_mixer.weight", "pan_layers.0.pan.species_weights"]


def test_stress_training_with_a_molecule_in_the_batch_has_finite_gradients(trained_models):
    """A graph without a cell: zero stress and finite gradients (mace's own division would NaN)."""
    from pansim.graph import atoms_to_graph, collate

    model = trained_models["pan+pgs"]
    z = model.atomic_numbers.tolist()
    batch = collate([atoms_to_graph(STRUCTURES[k](), z, R_MAX) for k in ("bulk", "cluster")])
    out = model(batch, training=True, compute_stress=True)
    assert torch.all(out["stress"][1] == 0)
    model.zero_grad()
    (out["stress"].square().sum() + out["forces"].square().sum()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.zero_grad()
