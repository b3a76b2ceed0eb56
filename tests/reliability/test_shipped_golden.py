"""Every shipped model keeps its weights bit for bit (hashes in shipped_golden.json)."""

import json

import pytest
from golden_shipped import GOLDEN, tensor_sha256

import pansim.pretrained as pre

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
GOLDEN_VALUES = json.loads(GOLDEN.read_text())


def test_every_registered_model_has_golden_values():
    assert sorted(GOLDEN_VALUES) == pre.list_models()


@pytest.mark.parametrize("name", sorted(GOLDEN_VALUES))
def test_shipped_model_weights_are_unchanged(name):
    assert tensor_sha256(name) == GOLDEN_VALUES[name]["tensor_sha256"]


# the values themselves (energy, forces, stress of every shipped model) are pinned by
# tests/test_golden.py; this file pins the weights bit for bit
