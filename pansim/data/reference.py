"""DFT reference properties of the crystals (SPEC 2.4): jobs, resumable, and their analysis."""

from __future__ import annotations

from pathlib import Path

from pansim.data.datasets import data_dir


def jobs_path(system: str, root=None) -> Path:
    """``data/<system>/reference/jobs.json``: the manifest of the reference-property jobs."""
    return data_dir(root) / system / "reference" / "jobs.json"


def queue(system: str, root=None) -> int:
    """Queue the reference jobs of ``system``."""
    raise NotImplementedError


def analyse(system: str, root=None) -> dict:
    """Fit what the finished jobs allow and write the results."""
    return {}


def summary(system: str, root=None) -> dict:
    """Results written so far."""
    return {}
