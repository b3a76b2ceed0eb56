import json
import math

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from workflows._common import (
    WorkflowResult,
    atomic_write_text,
    load_calculator,
    new_figure,
    save_figure,
    to_jsonable,
)


def test_builtin_calculators():
    assert isinstance(load_calculator("emt"), EMT)
    assert isinstance(load_calculator("LJ"), LennardJones)


def test_unknown_model_goes_to_pancalculator():
    with pytest.raises(Exception):  # noqa: B017 - whatever PANCalculator raises for a bad name
        load_calculator("no-such-model-xyz")


def test_to_jsonable_handles_numpy_and_nan():
    data = to_jsonable(
        {"a": np.arange(3), "b": np.float32(1.5), "c": float("nan"), "d": np.bool_(1)}
    )
    assert json.dumps(data) == '{"a": [0, 1, 2], "b": 1.5, "c": null, "d": true}'


def test_result_round_trip_ignores_unknown_keys(tmp_path):
    res = WorkflowResult(units={"x": "eV"}, warnings=["w"])
    text = res.to_json(tmp_path / "r.json")
    data = json.loads(text)
    data["extra"] = 1
    back = WorkflowResult.from_dict(data)
    assert back == res and WorkflowResult.from_json(tmp_path / "r.json") == res


def test_atomic_write_and_figure(tmp_path):
    path = atomic_write_text(tmp_path / "sub" / "a.txt", "hello")
    assert path.read_text() == "hello" and not list(path.parent.glob(".*tmp"))
    fig, ax = new_figure()
    ax.plot([0, 1], [0, math.pi])
    assert save_figure(fig, tmp_path / "f.png").stat().st_size > 1000
