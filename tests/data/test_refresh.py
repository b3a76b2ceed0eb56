"""``pansim data sample --refresh-pending``: redraw unlabelled configurations after a sampler
change; labelled ones are never touched, and a running labeller blocks it."""

import copy
import json

import numpy as np
import pytest

from pansim.cli import main
from pansim.data import build, datasets, sampling
from pansim.data.manifest import Manifest, ManifestError, file_lock

N = 20  # one block: every route


def _old_sampler(monkeypatch):
    """Queue with a stand-in for sampler version 1 (other contact and liquid geometry)."""
    mp = monkeypatch
    mp.setattr(sampling, "SAMPLER_VERSION", 1)
    mp.setattr(sampling, "CONTACT_FRACTION", (0.62, 0.88))
    mp.setattr(sampling, "LIQUID_DIAMETER", {"si": (0.80, 0.82), "ag": (0.80, 0.82)})
    mp.setattr(sampling, "LIQUID_FLOOR", 0.78)


def _label_some(root, system, keys):
    with Manifest.update(datasets.manifest_path(system, root)) as m:
        for k in keys:
            n = len(m.entries[k]["job"]["atoms"]["numbers"])
            m.mark_done(k, {"energy": -1.0, "forces": np.zeros((n, 3)).tolist(), "code": "fake"})


@pytest.fixture
def old_manifest(root, monkeypatch):
    """A Si manifest of the 'old' sampler with a labelled liquid, contact and strain entry."""
    with monkeypatch.context() as mp:
        _old_sampler(mp)
        build.sample("si", N, root=root)
    m = Manifest.load(datasets.manifest_path("si", root))
    by_route = {}
    for k, e in m.entries.items():
        by_route.setdefault(e["provenance"]["route"], []).append(k)
    done = [by_route["liquid"][0], by_route["contact"][0], by_route["strain"][0]]
    _label_some(root, "si", done)
    return done, by_route


def test_refresh_redraws_pending_and_never_touches_done(root, old_manifest):
    done, by_route = old_manifest
    path = datasets.manifest_path("si", root)
    before = copy.deepcopy(Manifest.load(path).entries)
    with pytest.raises(ManifestError, match="--refresh-pending"):
        build.sample("si", N, root=root)  # a changed pending structure is refused
    assert Manifest.load(path).entries == before

    counts = build.refresh_pending("si", root=root)
    after = Manifest.load(path).entries
    assert list(after) == list(before)  # same ids, same order
    for k in done:
        assert after[k] == before[k]  # byte-for-byte: labels and old provenance
    changed = [k for k in after if after[k]["hash"] != before[k]["hash"]]
    routes = {after[k]["provenance"]["route"] for k in changed}
    assert routes == {"liquid", "contact"} and not set(changed) & set(done)
    for k in changed:
        e = after[k]
        assert e["status"] == "pending" and e["provenance"]["sampler_version"] == 2
        assert e["provenance"]["redrawn_from_hash"] == before[k]["hash"]
        assert e["provenance"]["redrawn_from_sampler_version"] == 1
        assert e["hash"] == datasets.job_hash(e["job"])
        want = sampling.crystal_config("si", e["provenance"]["index"])
        assert e["provenance"]["config_hash"] == want.info["config_hash"]
    assert counts["redrawn"] == len(changed)
    assert counts["kept_done_older_sampler"] == 2 and counts["kept_done"] == 1  # strain: same
    assert counts["provenance_updated"] == N - len(done) - len(changed)

    again = build.refresh_pending("si", root=root)  # idempotent
    assert again["unchanged"] == N - len(done) and again["redrawn"] == 0
    assert Manifest.load(path).entries == after
    assert build.sample("si", N, root=root) == 0  # plain sampling works again
    assert build.sample("si", N + 5, root=root) == 5


def test_refresh_is_refused_while_a_labeller_runs(root, old_manifest):
    path = datasets.manifest_path("si", root)
    before = path.read_bytes()
    with file_lock(root / ".label.lock", timeout=0), pytest.raises(ManifestError, match="stop it"):
        build.refresh_pending("si", root=root)
    assert path.read_bytes() == before


def test_refresh_cli_and_failed_entries(root, old_manifest, capsys):
    done, by_route = old_manifest
    path = datasets.manifest_path("si", root)
    failed = by_route["liquid"][1]
    with Manifest.update(path) as m:
        m.mark_failed(failed, "KohnShamConvergenceError")
    args = ["data", "--data-dir", str(root), "sample", "si", "--refresh-pending"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "redrawn" in out and "kept_done_older_sampler 2" in out
    e = Manifest.load(path).entries[failed]
    assert e["status"] == "pending" and e["provenance"]["redrawn_from_status"] == "failed"
    assert json.loads(e["provenance"]["route_params"])["rattle_A"] > 0
