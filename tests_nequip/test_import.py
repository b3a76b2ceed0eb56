"""Item 1 of issue 7: pansim.modules is pure torch; the extension registers with nequip."""

import importlib.metadata
import subprocess
import sys

import pytest


def test_modules_import_without_mace_or_e3nn():
    code = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('mace') is None, 'mace-torch must be absent here'\n"
        "import pansim.modules, pansim.modules.pan, pansim.modules.pgs\n"
        "from pansim.modules import PANPooling, FourierBesselEdgeMixer, ESReadoutExpansion\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'mace', 'e3nn', 'nequip'})\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_testing_helpers_import_without_mace():
    code = "import sys, pansim.testing\nassert 'mace' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_extension_entry_points():
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="nequip.extension")}
    assert eps.get("init_always") == "allegro" or "pansim_nequip" in eps.values()
    values = [ep.value for ep in importlib.metadata.entry_points(group="nequip.extension")]
    assert "pansim_nequip" in values and "pansim" in values


def test_nequip_loads_and_interns_the_extension():
    code = (
        "import sys, nequip\n"
        "assert 'pansim_nequip' in sys.modules\n"
        "from nequip.scripts._package_utils import _INTERNAL_MODULES\n"
        "assert {'pansim', 'pansim_nequip'} <= _INTERNAL_MODULES, _INTERNAL_MODULES\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_variant_is_refused():
    from _tiny import build

    with pytest.raises(ValueError, match="unknown variant"):
        build("nequip", "pan+mace")
