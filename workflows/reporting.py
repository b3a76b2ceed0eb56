"""What the crystal and the molecule validation reports share: running, lookup, Markdown.

:mod:`workflows.validate` (crystals) and :mod:`workflows.validate_molecule`
both build their reports with these functions; neither imports the other's
helpers.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Skipped(Exception):
    """A workflow that does not apply to a system (reported, not an error)."""


def run_workflows(
    workflows: dict[str, Callable[..., Any]],
    call: Callable[[Callable[..., Any]], tuple[Any, Callable[..., None]]],
    out: Path,
    skip: tuple[str, ...] = (),
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Run each of ``workflows`` as ``call(runner) -> (result, plot)`` and save its outputs.

    Writes ``OUT/<name>.json`` and ``OUT/<name>.png``; a :class:`Skipped` workflow or
    one that raises becomes a message, never an exception (a report is always written).
    """
    results: dict[str, dict[str, Any]] = {}
    messages: list[str] = []
    todo = [name for name in workflows if name not in skip]
    for k, name in enumerate(todo, 1):
        runner = workflows[name]
        stage = f"[{k}/{len(todo)}] {out.name}/{name}"
        print(f"{stage} ...", flush=True)
        start = time.perf_counter()
        try:
            res, plot = call(runner)
        except Skipped as why:
            messages.append(f"{out.name}/{name} skipped: {why}")
            print(f"{stage} skipped ({why})", flush=True)
            continue
        except Exception as err:  # noqa: BLE001 - a failing workflow must not stop the report
            messages.append(f"{out.name}/{name} failed: {type(err).__name__}: {err}")
            traceback.print_exc(file=sys.stderr)
            print(f"{stage} FAILED ({type(err).__name__})", flush=True)
            continue
        print(f"{stage} done in {time.perf_counter() - start:.1f} s", flush=True)
        res.to_json(out / f"{name}.json")
        plot(res, out / f"{name}.png")
        results[name] = res.to_dict()
        messages += [f"{out.name}/{name}: {w}" for w in res.warnings]
    return results, messages


def lookup(data: Any, path: tuple[Any, ...]) -> Any:
    """Follow ``path`` through nested dicts/lists; a callable step transforms the value.

    Returns ``None`` when a key is missing or a step fails (e.g. ``max`` of ``[]``).
    """
    for step in path:
        if callable(step):
            try:
                data = step(data)
            except (ValueError, TypeError, IndexError, KeyError):
                return None
        elif isinstance(data, dict) and step in data:
            data = data[step]
        elif isinstance(data, list) and isinstance(step, int) and -len(data) <= step < len(data):
            data = data[step]
        else:
            return None
    return None if isinstance(data, dict) else data


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def _fmt_error(error: Any, ref: Any) -> str:
    """``error`` and, when the reference is non-zero, its percentage of the reference."""
    if error is None:
        return "-"
    return f"{error:+.3g} ({100 * error / abs(ref):+.1f}%)" if ref else f"{error:+.3g}"


def describe_model(name: Any) -> str:
    """``name`` and, for a registered pretrained model, its variant (``pan+pgs``, ...)."""
    if name is None:
        return "-"
    try:
        from pansim import pretrained

        variant = pretrained.model_entry(str(name)).get("variant")
    except (ImportError, KeyError, ValueError):
        variant = None
    return f"`{name}`" + (f" ({variant})" if variant else "")


def markdown_report(report: dict[str, Any]) -> str:
    """The Markdown report: header, messages, the table, then the plots of each model."""
    ref = report.get("reference_label", "DFT")
    lines = [
        f"# pansim validation: {report['system']}",
        "",
        f"- model: {describe_model(report['model'])}",
        f"- baseline: {describe_model(report['baseline'])}",
        f"- {report['reference_message']}",
        f"- settings: {'quick' if report['quick'] else 'full'}",
        "",
        f"| quantity | unit | {ref} | baseline | model | baseline error | model error |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["table"]:
        values = [_fmt(r[k]) for k in ("dft", "baseline", "model")]
        errors = [_fmt_error(r[f"{k}_error"], r["dft"]) for k in ("baseline", "model")]
        quantity = r["quantity"].replace("DFT", ref)
        lines.append("| " + " | ".join([quantity, r["unit"], *values, *errors]) + " |")
    lines += ["", f"Errors are value - {ref} (percent of the {ref} value)."]
    if report["messages"]:
        lines += ["", "## Messages", ""] + [f"- {m}" for m in report["messages"]]
    for label in ("model", "baseline"):
        if label == "baseline" and report.get("baseline_is_model"):
            continue  # evaluated once: the model's plots are the baseline's
        if report["results"].get(label):
            lines += ["", f"## Plots: {label} (`{report[label]}`)", ""]
            lines += [f"![{w}]({label}/{w}.png)" for w in report["results"][label]]
    return "\n".join(lines) + "\n"


def registry_models() -> tuple[list[str], str | None, str]:
    """Names in ``pansim.pretrained``, its default, and a message when the registry is unusable."""
    try:
        from pansim import pretrained

        entries = list(pretrained.list_models())
    except (ImportError, AttributeError) as err:
        return [], None, f"the pretrained-model registry is not available ({err})"
    names = [
        e
        if isinstance(e, str)
        else (e.get("name") if isinstance(e, dict) else getattr(e, "name", str(e)))
        for e in entries
    ]
    default = getattr(pretrained, "default_model", None)
    chosen = default() if callable(default) else (names[0] if names else None)
    return names, chosen, "" if names else "the pretrained-model registry is empty"


def baseline_candidates(model: str, system: str) -> list[str]:
    """Names tried for the matching baseline: ``MODEL-baseline`` then ``SYSTEM-baseline``."""
    return [f"{model}-baseline", f"{system}-baseline"]
