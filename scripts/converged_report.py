"""Learning curves and stopping table of the converged-recipe runs (issue 23).

Reads every run folder ``RUNS/<system>/<variant>-seed<k>/`` (``metrics.json`` written
each epoch, ``summary.json`` once the run has finished) and writes, per system,

- ``RUNS/<system>/learning_curves.png``: validation loss and validation force MAE
  against epoch, every variant and seed of the system on one figure (log scale);
- ``RUNS/report.md`` / ``RUNS/report.json``: per run, whether it finished, the epoch
  it stopped at and why, its best (selection) epoch, the validation errors at the best
  epoch, and, for finished runs only, the test errors the trainer measured once on the
  best weights.

Runs still in progress are listed with their latest epoch and marked ``running``;
their test errors do not exist yet (the trainer touches the test split once, at the
end). Nothing here chooses anything on test data.

    python scripts/converged_report.py                       # results/converged
    python scripts/converged_report.py --runs results/training --out-dir /tmp/cosine
    python scripts/converged_report.py --plan configs/converged   # + compute still needed
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # lab/ (research bookkeeping, not installed)

from lab.runs import VARIANT_ORDER, collect, compute_account  # noqa: E402


def plot(system: str, runs: list[dict], path: Path) -> Path:
    """Validation loss and force MAE against epoch, all runs of a system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = dict(zip(VARIANT_ORDER, ("black", "tab:blue", "tab:orange", "tab:red"), strict=True))
    styles = ("-", "--", ":")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for run in runs:
        epochs = [row["epoch"] for row in run["history"]]
        label = f"{run['variant']} s{run['seed']}" + (
            " (running)" if run["status"] != "finished" else ""
        )
        style = dict(color=colours.get(run["variant"], "grey"), ls=styles[run["seed"] % 3], lw=1.2)
        axes[0].plot(epochs, [row["valid_loss"] for row in run["history"]], label=label, **style)
        axes[1].plot(epochs, [row["valid_forces_mae"] for row in run["history"]], **style)
        axes[0].plot([run["best_epoch"]], [run["best_valid_loss"]], "o", ms=4, color=style["color"])
    axes[0].set(
        yscale="log", xlabel="epoch", ylabel="validation loss", title=f"{system}: validation loss"
    )
    axes[1].set(yscale="log", xlabel="epoch", ylabel="validation force MAE (meV/A)",
                title=f"{system}: validation force MAE")  # fmt: skip
    axes[0].legend(fontsize=7, ncol=2)
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f} %"


def _mae(test: dict, key: str) -> float | None:
    """The MAE of one quantity in a trainer test summary, if measured."""
    return (test.get(key) or {}).get("mae")


def markdown(systems: dict[str, list[dict]]) -> str:
    """The stopping table of every run."""
    lines = [
        "# Converged-recipe runs: where each stopped and why",
        "",
        "Written by `python scripts/converged_report.py`. Validation errors at the best",
        "(selection) epoch; test errors only for finished runs (measured once, at the end,",
        "on the best-validation EMA weights). 'last-20 change': how much the best validation",
        "loss fell over the last 20 epochs against the 20 before (a converged run: about 0).",
        "",
    ]
    header = (
        "| run | status | epochs | best epoch | stop reason | final lr | last-20 change "
        "| valid E (meV/atom) "
        "| valid F (meV/A) | valid S (GPa) | test E | test F | test S |"
    )
    for system, runs in systems.items():
        lines += [f"## {system}", "", f"![learning curves]({system}/learning_curves.png)", ""]
        lines += [header, "|" + "---|" * 13]
        for run in runs:
            test = run["test"] or {}
            valid = run["best_valid"]
            lines.append(
                f"| {run['variant']} s{run['seed']} | {run['status']} | {run['epochs']} "
                f"| {run['best_epoch']} | {run['stop_reason'] or '-'} | {run['final_lr']:.2g} "
                f"| {_pct(run['late_change'])} "
                f"| {_fmt(valid['valid_energy_mae'])} | {_fmt(valid['valid_forces_mae'])} "
                f"| {_fmt(valid['valid_stress_mae'])} | {_fmt(_mae(test, 'energy_per_atom'))} "
                f"| {_fmt(_mae(test, 'forces'))} | {_fmt(_mae(test, 'stress'))} |"
            )
        lines.append("")
    return "\n".join(lines)


def compute_markdown(account: dict, plan: str) -> str:
    """The compute section: spent, per-epoch cost, what the plan still needs."""
    if not account.get("finished_runs"):
        return "## Compute\n\nNo finished run yet: nothing to estimate from.\n"
    epochs = ", ".join(f"{v} {n:.0f}" for v, n in account["mean_epochs"].items())
    return "\n".join([
        "## Compute",
        "",
        f"Finished runs: {account['finished_runs']}, {account['spent_core_hours']:.1f} "
        f"core-hours ({account['seconds_per_epoch']:.0f} s per epoch of a one-thread job, "
        f"mean over them; mean epochs to stop: {epochs}).",
        f"The plan `{plan}` has {account['planned_jobs']} jobs: "
        f"{account['running_jobs']} started and unfinished, {account['todo_jobs']} not started. "
        f"Estimated still needed: **{account['remaining_core_hours']:.0f} core-hours** "
        "(each unfinished job charged its variant's mean epochs to stop at the mean cost "
        "per epoch; `lab.runs.compute_account`).",
        "",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Write the plots and the table; 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "results" / "converged")
    parser.add_argument("--out-dir", type=Path, help="where to write (default: --runs)")
    parser.add_argument(
        "--plan", type=Path, help="config folder of the plan: adds a compute section"
    )
    args = parser.parse_args(argv)
    out = args.out_dir or args.runs
    systems = collect(args.runs)
    if not systems:
        parser.error(f"no run folders with metrics under {args.runs}")
    for system, runs in systems.items():
        print("wrote", plot(system, runs, out / system / "learning_curves.png"))
    from pansim._io import write_text_atomic

    slim = {
        s: [{k: v for k, v in r.items() if k != "history"} for r in runs]
        for s, runs in systems.items()
    }
    text = markdown(systems)
    if args.plan is not None:
        from lab.plan import jobs_in

        planned = [(j.system, j.variant, j.seed) for j in jobs_in(args.plan)]
        account = compute_account([r for rs in systems.values() for r in rs], planned)
        slim["_compute"] = account
        text += "\n" + compute_markdown(account, str(args.plan))
    write_text_atomic(out / "report.json", json.dumps(slim, indent=1))
    write_text_atomic(out / "report.md", text)
    print("wrote", out / "report.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
