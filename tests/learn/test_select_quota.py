"""``select.min_per_route``: per-route quotas in the selection (hand-built cells, no models)."""

import numpy as np
from ase.build import bulk

from workflows.learn.select import descriptor, farthest_points, select, select_with_quota


def cell(route: str, spread: float, seed: int, scale: float = 1.0, rattle: float = 0.05):
    """A rattled 4-atom Cu cell of ``route`` with committee spread ``spread`` (eV/A)."""
    a = bulk("Cu", "fcc", 3.61, cubic=True)
    a.set_cell(a.cell * scale, scale_atoms=True)
    a.rattle(rattle, seed=seed)
    a.info["route"] = route
    a.info["forces_std_max"] = spread
    return a


def mixed(seed: int = 0) -> list:
    """Hot MD cells (high spread), close contacts and a vacancy (low spread)."""
    rng = np.random.default_rng(seed)
    cands = [cell("md", float(s), k, rng.uniform(0.97, 1.03)) for k, s in enumerate(
        rng.uniform(0.4, 0.9, 8))]  # fmt: skip
    cands += [cell("contact", s, 10 + k, 0.92 + 0.01 * k) for k, s in enumerate((0.05, 0.12, 0.08))]
    vac = cell("vacancy", 0.1, 20)
    del vac[0]
    return cands + [vac]


def old_select(cands, threshold, cap, r_max=6.0, bins=40):
    """The selection before quotas existed (reference for the no-quota case)."""
    spread = np.array([a.info["forces_std_max"] for a in cands])
    above = np.flatnonzero(spread > threshold)
    if above.size == 0 or cap <= 0:
        return []
    x = np.stack([descriptor(cands[i], r_max, bins) for i in above])
    first = int(np.argmax(spread[above]))
    return [int(above[k]) for k in farthest_points(x, first, cap)]


def routes(cands, idx):
    return [cands[i].info["route"] for i in idx]


def test_quota_picks_below_threshold_contact_cells():
    cands = mixed()
    assert "contact" not in routes(cands, select(cands, 0.3, 6))  # never without a quota
    chosen, by_quota = select_with_quota(cands, 0.3, 6, min_per_route={"contact": 2})
    assert routes(cands, chosen)[:2] == ["contact", "contact"]
    assert all(cands[i].info["forces_std_max"] < 0.3 for i in chosen[:2])
    assert routes(cands, chosen)[2:] == ["md"] * 4  # the rest: above the threshold
    assert by_quota == {"contact": 2}
    assert select(cands, 0.3, 6, min_per_route={"contact": 2}) == chosen


def test_quota_takes_the_most_disagreeing_of_its_route_first():
    cands = mixed()
    contact = [i for i, a in enumerate(cands) if a.info["route"] == "contact"]
    best = max(contact, key=lambda i: cands[i].info["forces_std_max"])
    for n in (1, 2, 3):
        chosen = select(cands, 0.3, 6, min_per_route={"contact": n})
        assert chosen[0] == best and set(chosen[:n]) <= set(contact)


def test_quota_and_threshold_picks_never_repeat_and_respect_the_cap():
    cands = mixed()
    quota = {"contact": 2, "vacancy": 1}
    for threshold in (0.01, 0.3, 5.0):  # above the threshold: every one, md only, none
        above = {i for i, a in enumerate(cands) if a.info["forces_std_max"] > threshold}
        for cap in (0, 1, 2, 3, 5, 20):
            chosen, by_quota = select_with_quota(cands, threshold, cap, min_per_route=quota)
            assert len(chosen) == len(set(chosen)) <= cap
            assert by_quota == {"contact": min(2, cap), "vacancy": min(1, max(cap - 2, 0))}
            n_quota = sum(by_quota.values())
            assert set(chosen[n_quota:]) <= above  # the rest: above the threshold
            assert len(chosen) == min(cap, len(above | set(chosen[:n_quota])))


def test_a_small_cap_fills_the_quotas_in_the_order_given():
    cands = mixed()
    chosen, by_quota = select_with_quota(cands, 0.3, 2, min_per_route={"vacancy": 1, "contact": 2})
    assert routes(cands, chosen) == ["vacancy", "contact"]
    assert by_quota == {"vacancy": 1, "contact": 1}
    assert list(by_quota) == ["vacancy", "contact"]


def test_fewer_candidates_than_the_quota_takes_what_there_is():
    cands = mixed()
    chosen, by_quota = select_with_quota(cands, 0.3, 6, min_per_route={"vacancy": 3, "compress": 2})
    assert by_quota == {"vacancy": 1, "compress": 0}
    assert routes(cands, chosen) == ["vacancy"] + ["md"] * 5


def test_the_rest_stays_diverse_from_the_quota_picks():
    """After the quota pick, an md cell like it loses to one unlike it."""
    top = cell("md", 0.9, 1, 1.00)
    like_contact = cell("md", 0.5, 2, 0.90)
    other = cell("md", 0.5, 3, 0.98)
    contact = cell("contact", 0.1, 4, 0.90)
    cands = [top, like_contact, other, contact]
    assert select(cands, 0.3, 2) == [0, 1]  # alone, the one like the contact is farthest
    x = np.stack([descriptor(a) for a in cands])
    assert np.linalg.norm(x[1] - x[3]) < np.linalg.norm(x[2] - x[3])
    assert select(cands, 0.3, 3, min_per_route={"contact": 1}) == [3, 0, 2]


def test_the_most_disagreeing_above_threshold_picked_by_quota_is_not_repeated():
    cands = mixed()
    cands[8].info["forces_std_max"] = 5.0  # a contact cell that is also the most disagreeing
    chosen = select(cands, 0.3, 5, min_per_route={"contact": 1})
    assert chosen[0] == 8 and len(set(chosen)) == 5


def test_no_quota_is_the_old_selection():
    for seed in (0, 1):
        cands = mixed(seed)
        for threshold, cap, r_max, bins in [
            (0.01, 20, 6.0, 40), (0.3, 3, 6.0, 40), (0.6, 1, 5.0, 30), (5.0, 3, 6.0, 40),
            (0.3, 0, 6.0, 40),
        ]:  # fmt: skip
            want = old_select(cands, threshold, cap, r_max, bins)
            assert select(cands, threshold, cap, r_max, bins) == want
            for quota in (None, {}, {"contact": 0}, {"md": 0, "vacancy": 0}):
                got = select(cands, threshold, cap, r_max, bins, min_per_route=quota)
                assert got == want


def test_duplicates_of_the_quota_picks_are_still_taken_by_order():
    cands = [cell("contact", 0.1, 0), cell("md", 0.5, 0), cell("md", 0.6, 0)]  # one structure
    assert select(cands, 0.3, 3, min_per_route={"contact": 1}) == [0, 2, 1]
