import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


CU = ["--structure-name", "Cu"]  # EMT has no Si


@pytest.mark.parametrize(
    "script, outputs, extra",
    [
        ("md_python.py", ["nve.json", "nve.png", "nvt/md.traj", "nvt/md.extxyz"], []),
        ("eos_elastic.py", ["eos.json", "elastic.json", "eos.png", "elastic.png"], []),
        ("phonon_bands.py", ["phonons.json", "bands.png"], []),
        ("phonopy_files.py", ["phonopy.yaml", "band.yaml", "band_by_phonopy.png"], CU),
        ("matcalc_properties.py", ["matcalc.json"], CU),
    ],
)
def test_example_runs(script, outputs, extra, tmp_path):
    if script.startswith("matcalc"):
        pytest.importorskip("matcalc")
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / script),
            "--model",
            "emt",
            "--quick",
            "--out",
            str(tmp_path),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in outputs:
        assert (tmp_path / name).exists(), name


def test_examples_use_public_api_and_shipped_models():
    for script in EXAMPLES.glob("*.py"):
        text = script.read_text()
        assert "_common" not in text and "pansim._" not in text, script.name
        assert 'default="emt"' not in text, script.name


def test_plots_do_not_touch_pyplot_or_environment():
    code = (
        "import os, sys; before = dict(os.environ)\n"
        "from ase.build import bulk; from ase.calculators.emt import EMT\n"
        "from workflows.eos import equation_of_state, plot_eos\n"
        "import tempfile; d = tempfile.mkdtemp()\n"
        "plot_eos(equation_of_state(bulk('Cu'), EMT(), n_points=9), d + '/e.png')\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "changed = set(os.environ.items()) ^ set(before.items())\n"
        "assert all(k.startswith('SPGLIB_') for k, _ in changed), changed  # spglib's own import\n"
        "print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")
