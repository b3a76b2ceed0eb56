"""Reference-property jobs: queueing, EOS fit, next stages, with fake labels (no DFT)."""

import numpy as np

from pansim.data import reference
from pansim.data.manifest import Manifest


def _fake_done(root, system, energy):
    with Manifest.update(reference.jobs_path(system, root)) as m:
        for e in m.entries.values():
            if e["status"] == "pending":
                a = e["job"]["atoms"]
                v = abs(np.linalg.det(a["cell"]))
                n = len(a["numbers"])
                e.update(
                    status="done",
                    result={
                        "energy": energy(v),
                        "forces": np.zeros((n, 3)).tolist(),
                        "stress": np.zeros((3, 3)).tolist(),
                    },
                )


def test_eos_queue_fit_and_next_stages(tmp_path):
    assert reference.queue("si", tmp_path) == 12
    assert reference.queue("si", tmp_path) == 0
    m = Manifest.load(reference.jobs_path("si", tmp_path))
    assert {tuple(e["job"]["calc"]["kpts"]) for e in m.entries.values()} == {(8, 8, 8)}
    v0 = 40.9
    _fake_done(tmp_path, "si", lambda v: 0.5 * 0.6 * (v - v0) ** 2 / v0 - 10.0)
    res = reference.analyse("si", tmp_path)
    assert abs(res["eos"]["V0_A3"] - v0) < 0.05
    m = Manifest.load(reference.jobs_path("si", tmp_path))
    stages = {e["provenance"]["stage"] for e in m.entries.values()}
    assert stages == {"eos", "elastic", "phonon"}
    relax = [e for e in m.entries.values() if e["job"]["task"] == "relax"]
    assert len(relax) == 2  # Si shear: ions relaxed
    _fake_done(tmp_path, "si", lambda v: 0.0)
    res = reference.analyse("si", tmp_path)
    assert set(res) >= {"eos", "elastic", "phonons"}
