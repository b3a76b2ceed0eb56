import os
import subprocess
import sys


def test_import_does_not_change_environment():
    code = (
        "import os; before = dict(os.environ); import pansim;"
        " from pansim._compat import import_mace; import_mace();"
        " assert dict(os.environ) == before, set(os.environ) ^ set(before); print('ok')"
    )
    env = {k: v for k, v in os.environ.items() if k != "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "ok"


def test_cli_help_lists_commands():
    from pansim.cli import COMMANDS, build_parser

    text = build_parser([]).format_help()
    for name in COMMANDS:
        assert name in text


def test_thermalize_gives_the_same_momenta_on_ase_without_thermalize_momenta(monkeypatch):
    """setup.cfg allows ase >= 3.23; ``thermalize_momenta`` only exists from ase 3.29."""
    import numpy as np
    from ase.build import bulk
    from ase.md import velocitydistribution

    from pansim._compat import thermalize

    atoms = bulk("Si", cubic=True)
    thermalize(atoms, 500.0, rng=np.random.default_rng(3))
    current = atoms.get_momenta()
    assert 100 < atoms.get_temperature() < 1500

    def legacy(atoms, *, temperature_K, rng=None):  # ase < 3.29: only this name exists
        calls.append(temperature_K)
        xi = rng.standard_normal((len(atoms), 3))
        masses = atoms.get_masses()
        atoms.set_momenta(
            xi * np.sqrt(masses * velocitydistribution.units.kB * temperature_K)[:, None]
        )

    calls: list[float] = []
    monkeypatch.delattr(velocitydistribution, "thermalize_momenta")
    monkeypatch.setattr(velocitydistribution, "MaxwellBoltzmannDistribution", legacy)
    older = bulk("Si", cubic=True)
    thermalize(older, 500.0, rng=np.random.default_rng(3))
    assert calls == [500.0]
    np.testing.assert_allclose(older.get_momenta(), current, rtol=1e-14)


_BUILD = (
    "import warnings; from pansim.backbones import build_model;"
    " build = lambda: build_model('mace', 'pan+pgs', elements=['Si'], r_max=4.0,"
    " num_channels=8, max_L=1);"
    " build(); before = list(warnings.filters); build();"  # first build: imports add filters
    " assert warnings.filters == before, 'pansim changed the warning filters';"
    " print('ok')"
)


def _run(*flags: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    return subprocess.run(
        [sys.executable, *flags, "-c", _BUILD], env=env, capture_output=True, text=True
    )


def test_importing_and_building_a_model_is_quiet():
    """e3nn's TorchScript warnings and mace's import-time print reach no one by default."""
    out = _run()
    assert out.returncode == 0, out.stderr
    assert out.stdout == "ok\n"  # mace's cuequivariance line stays off stdout
    for noise in ("TorchScript", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "cuequivariance"):
        assert noise not in out.stderr


def test_library_noise_is_shown_when_the_user_asks_for_warnings():
    out = _run("-W", "default")
    assert out.returncode == 0, out.stderr
    assert "cuequivariance" in out.stdout
    assert "The TorchScript type system" in out.stderr
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD detected" in out.stderr
