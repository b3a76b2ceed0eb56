"""The shipping rule of issue 23: which trained variant a system's plain name serves.

For one system, given its runs under one recipe (:func:`lab.runs.collect`) and, for a
crystal, the E(V) check of each run's best model (``scripts/eos_check.py``):

1. Only seeds finished by *every* variant with a finished run count, so each variant is
   judged on the same seeds (a variant still training is not counted, and the decision
   names it, with its best validation loss so far: the decision is then provisional).
   A variant is summarised by its mean best validation loss over them (the trainer's
   selection metric: energy, force and stress terms with the recipe's weights) and its
   mean validation / test MAEs.
2. A PAN/PGS variant is eligible when every one of its counted runs passes the E(V)
   check (crystals: B(V) monotone over +-6 % around V0 and B(V0) within 10 % of the
   DFT B0; molecules have no such check).
3. A PAN/PGS variant is also eligible only if it is no worse than the baseline on any
   validation MAE (mean energy, force and stress MAE each at most the baseline's): the
   issue asks for a shipped name "no worse than its baseline", and the weighted loss
   alone can hide a large regression of one quantity (Si, seed 0: pgs had the lower
   validation loss, 0.1202 against 0.1204, with a 48 % higher validation energy MAE).
   This clause was added when that first happened, before anything was shipped by it.
4. The plain name serves the eligible variant with the lowest mean validation loss if
   that loss is at most the baseline's; otherwise it serves the baseline architecture.

5. Runs of a second recipe join the same table as ``<variant>@<recipe>`` (e.g.
   ``pan+pgs@warmstart``: the variant grafted, zero-started, onto the converged baseline
   and trained on; ``configs/warmstart``), judged by the same clauses against the same
   baseline twin. The twin is the baseline-architecture run of any recipe with the lowest
   mean validation loss, so the baseline continued under the second recipe (its control)
   counts for the baseline too: a second recipe never wins by giving the baseline less.

The test split is not used to choose: :func:`choose` reports the served variant's test
errors against the baseline's next to the choice, so a variant that wins on validation
but loses on test is visible, not hidden.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import mean
from typing import Any

#: (report key, run field, metrics key) of the mean errors a decision lists
VALID_KEYS = ("valid_energy_mae", "valid_forces_mae", "valid_stress_mae")
TEST_KEYS = ("energy_per_atom", "forces", "stress")


#: separates a variant from the recipe tag of a run trained under a second recipe
RECIPE_SEP = "@"


def architecture(variant: str) -> str:
    """``pan+pgs@warmstart`` -> ``pan+pgs``: the model a (tagged) variant name trains."""
    return variant.split(RECIPE_SEP)[0]


def recipe_of(variant: str) -> str | None:
    """``pan+pgs@warmstart`` -> ``warmstart``; None for a run of the main recipe."""
    return variant.split(RECIPE_SEP, 1)[1] if RECIPE_SEP in variant else None


def tag_recipe(runs: Sequence[Mapping[str, Any]], recipe: str) -> list[dict[str, Any]]:
    """The runs of a second recipe, their variants renamed ``<variant>@<recipe>``."""
    if not recipe or RECIPE_SEP in recipe:
        raise ShipRuleError(f"recipe tag {recipe!r}: give a name without {RECIPE_SEP!r}")
    return [{**run, "variant": f"{run['variant']}{RECIPE_SEP}{recipe}"} for run in runs]


def parse_recipe(item: str) -> tuple[str, str]:
    """``"warmstart=results/warmstart"`` -> ``("warmstart", "results/warmstart")``."""
    tag, sep, folder = item.partition("=")
    if not sep or not tag or not folder or RECIPE_SEP in tag:
        raise ShipRuleError(
            f"recipe {item!r}: give TAG=FOLDER (a tag without {RECIPE_SEP!r}), "
            "e.g. warmstart=results/warmstart"
        )
    return tag, folder


class ShipRuleError(ValueError):
    """Runs that cannot be decided on (no finished baseline, no common seed)."""


def common_seeds(runs: Sequence[Mapping[str, Any]]) -> list[int]:
    """Seeds finished by every variant that has a finished run."""
    done: dict[str, set[int]] = {}
    for run in runs:
        if run["status"] == "finished":
            done.setdefault(run["variant"], set()).add(run["seed"])
    if not done:
        return []
    return sorted(set.intersection(*done.values()))


def _mean_or_none(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return mean(values) if values else None


def summarise(
    runs: Sequence[Mapping[str, Any]],
    seeds: Sequence[int],
    eos: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, dict[str, Any]]:
    """Per variant: mean validation loss / MAEs / test MAEs over ``seeds``, E(V) verdict."""
    table: dict[str, dict[str, Any]] = {}
    for run in runs:
        if run["status"] != "finished" or run["seed"] not in seeds:
            continue
        row = table.setdefault(run["variant"], {"runs": []})
        row["runs"].append(run)
    for variant, row in table.items():
        counted = row.pop("runs")
        row["seeds"] = sorted(r["seed"] for r in counted)
        row["paths"] = [r["path"] for r in counted]
        row["valid_loss"] = mean(r["best_valid_loss"] for r in counted)
        row["valid_loss_spread"] = max(r["best_valid_loss"] for r in counted) - min(
            r["best_valid_loss"] for r in counted
        )
        for key in VALID_KEYS:
            row[key] = _mean_or_none([r["best_valid"].get(key) for r in counted])
        for key in TEST_KEYS:
            row[f"test_{key}_mae"] = _mean_or_none(
                [((r.get("test") or {}).get(key) or {}).get("mae") for r in counted]
            )
        if eos is None:
            row["eos_ok"] = None
        else:
            missing = [r["path"] for r in counted if r["path"] not in eos]
            if missing:
                raise ShipRuleError(f"{variant}: no E(V) check for {missing}")
            checks = [eos[r["path"]] for r in counted]
            row["eos_ok"] = all(c["monotone"] and c["B_V0_within_10pct"] for c in checks)
            row["B_V0"] = [c["B_V0"] for c in checks]
    return table


def choose(
    system: str,
    runs: Sequence[Mapping[str, Any]],
    eos: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The decision for ``system`` (see the module docstring).

    ``eos`` maps a run's ``path`` to its E(V) check (``monotone``,
    ``B_V0_within_10pct``, ``B_V0``); ``None`` for a system without one (molecules).
    """
    seeds = common_seeds(runs)
    if not seeds:
        raise ShipRuleError(f"{system}: no seed is finished by every variant with a run")
    table = summarise(runs, seeds, eos)
    unfinished = {
        r["variant"]: r for r in runs if r["status"] != "finished" and r["variant"] not in table
    }
    baselines = [v for v in table if architecture(v) == "baseline"]
    if not baselines:
        raise ShipRuleError(f"{system}: no finished baseline run; nothing to compare with")
    twin = min(baselines, key=lambda v: (table[v]["valid_loss"], v != "baseline"))
    base = table[twin]["valid_loss"]
    worse = {
        v: _worse_on_validation(row, table[twin])
        for v, row in table.items()
        if architecture(v) != "baseline"
    }
    eligible = {
        v: row
        for v, row in table.items()
        if architecture(v) != "baseline" and row["eos_ok"] is not False and not worse[v]
    }
    failing = sorted(v for v, row in table.items() if row["eos_ok"] is False)
    excluded = []
    if failing:
        excluded.append(f"{', '.join(failing)} fail(s) the E(V) check")
    for v, keys in sorted(worse.items()):
        if keys and v not in failing:
            excluded.append(
                f"{v} is worse than the baseline on validation "
                + ", ".join(f"{k} ({100 * d:+.1f} %)" for k, d in keys.items())
            )
    best = min(eligible, key=lambda v: eligible[v]["valid_loss"]) if eligible else None
    if best is not None and eligible[best]["valid_loss"] <= base:
        served = best
        reason = (
            f"{best} has the lowest mean validation loss ({eligible[best]['valid_loss']:#.4g}) "
            f"among the variants that pass the E(V) check, at most the baseline's ({base:#.4g})"
        )
        if excluded:
            reason += "; not eligible: " + "; ".join(excluded)
    else:
        served = twin
        parts = []
        if best is not None:
            parts.append(
                f"the best eligible PAN/PGS variant ({best}, mean validation loss "
                f"{eligible[best]['valid_loss']:#.4g}) is above the baseline's ({base:#.4g})"
            )
        parts += excluded
        if not table.keys() - set(baselines):
            parts.append("no PAN/PGS variant has finished on the counted seeds")
        reason = "no PAN/PGS variant won: " + "; ".join(parts)
    if unfinished:
        reason += "; not counted, still training: " + ", ".join(
            f"{v} (epoch {r.get('epochs')}, best validation loss so far "
            f"{r['best_valid_loss']:#.4g})"
            for v, r in sorted(unfinished.items())
        )
    if twin != "baseline":
        reason += f"; the baseline twin is {twin}, the baseline run with the lowest loss"
    test_vs_baseline = {
        key: _relative(table[served][f"test_{key}_mae"], table[twin][f"test_{key}_mae"])
        for key in TEST_KEYS
    }
    return {
        "system": system,
        "seeds": seeds,
        "served": served,
        "baseline": twin,
        "reason": reason,
        "eos_failing": failing,
        "worse_on_validation": {v: keys for v, keys in worse.items() if keys},
        "unfinished": sorted(unfinished),
        "variants": table,
        "served_test_vs_baseline": test_vs_baseline,
    }


def _worse_on_validation(row: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, float]:
    """Validation MAEs of ``row`` above the baseline's: ``{quantity: relative excess}``."""
    out = {}
    for key in VALID_KEYS:
        value, reference = row.get(key), baseline.get(key)
        if value is not None and reference is not None and value > reference:
            out[key.removeprefix("valid_").removesuffix("_mae")] = value / reference - 1.0
    return out


def _relative(value: float | None, reference: float | None) -> float | None:
    if value is None or reference in (None, 0):
        return None
    return value / reference - 1.0


def variant_rows(decision: Mapping[str, Any]) -> list[str]:
    """One Markdown table row per variant (columns of :data:`TABLE_HEAD`)."""

    def fmt(value):
        return "-" if value is None else f"{value:.3g}"

    rows = []
    for variant, row in decision["variants"].items():
        eos = {None: "-", True: "pass", False: "**fail**"}[row["eos_ok"]]
        mark = " (served)" if variant == decision["served"] else ""
        rows.append(
            f"| {variant}{mark} | {row['valid_loss']:#.4g} | {fmt(row['valid_energy_mae'])} "
            f"| {fmt(row['valid_forces_mae'])} | {fmt(row['valid_stress_mae'])} | {eos} "
            f"| {fmt(row['test_energy_per_atom_mae'])} | {fmt(row['test_forces_mae'])} "
            f"| {fmt(row['test_stress_mae'])} |"
        )
    return rows


#: header of :func:`variant_rows` (MAEs: E meV/atom, F meV/A, S GPa; valid loss: mean)
TABLE_HEAD = [
    "| variant | valid loss | valid E | valid F | valid S | E(V) check | test E | test F "
    "| test S |",
    "|---|---|---|---|---|---|---|---|---|",
]


def baseline_twin(decision: Mapping[str, Any]) -> str:
    """The baseline twin of a decision (decisions before the twin was recorded: baseline)."""
    return decision.get("baseline", "baseline")


def markdown(decision: Mapping[str, Any]) -> str:
    """The decision as a table (one row per variant) and the reason."""
    rel = decision["served_test_vs_baseline"]
    twin = baseline_twin(decision)
    lines = [
        f"# Shipping decision, {decision['system']}",
        "",
        f"Seeds counted: {decision['seeds']} (finished by every variant with a finished run). "
        "Chosen on the validation split only; test errors are listed, not used. MAEs: "
        "E meV/atom, F meV/A, S GPa; valid loss: mean over the seeds.",
        "",
        *TABLE_HEAD,
        *variant_rows(decision),
        *(
            [
                "",
                "`<variant>@<recipe>`: a run of a second recipe (`<recipe>`: "
                + ", ".join(f"`{k}` = `{v}`" for k, v in decision["recipes"].items())
                + "), judged against the same baseline twin.",
            ]
            if decision.get("recipes")
            else []
        ),
        "",
        f"**Served under `{decision['system']}`: {decision['served']}.** {decision['reason']}.",
        "",
        f"Test MAE of the served variant relative to its baseline twin ({twin}): "
        + ", ".join(f"{k} {'-' if v is None else f'{100 * v:+.1f} %'}" for k, v in rel.items()),
        "",
    ]
    return "\n".join(lines)
