"""The labelling manifest: one JSON file per job set, the single source of truth.

A manifest holds, for every job (a sampled configuration or one step of a
reference-property calculation), the complete worker input, the sampling
provenance, and its status:

- ``pending``: not labelled yet;
- ``done``: ``result`` holds the labels (energy, forces, stress) and timings;
- ``failed``: ``error`` says why (SCF not converged, worker crash, timeout).

Every change is written atomically (temporary file, fsync, ``os.replace``), so
the file on disk is always a complete earlier or later version, never half of
one. A killed run therefore loses at most the jobs in flight. A running labeller
holds a data-directory lock so that two runs never label the same set twice;
updates take a short ``flock`` on ``<manifest>.lock``, reload, change, save.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from pansim._io import write_json_atomic as write_json_atomic
from pansim._io import write_text_atomic as write_text_atomic

FORMAT = "pansim-manifest-1"
#: format of a merged ("grown") dataset's record (``pansim learn --merge``): it holds
#: finished labels only, so it never has any pending
GROWN_FORMAT = "pansim-grown-1"
STATUSES = ("pending", "done", "failed")


class ManifestError(RuntimeError):
    """A manifest file that cannot be used (corrupt, wrong format, conflicting job)."""


@contextlib.contextmanager
def file_lock(path: str | Path, timeout: float | None = None) -> Iterator[None]:
    """Exclusive ``flock`` on ``path``; ``timeout=0`` fails at once, ``None`` waits forever.

    Raises :class:`ManifestError` when the lock is not obtained in time.
    """
    import time

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        t0 = time.monotonic()
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if timeout is not None and time.monotonic() - t0 >= timeout:
                    raise ManifestError(f"{path} is held by another process") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Manifest:
    """Status and results of a set of labelling jobs, persisted in one JSON file.

    Parameters
    ----------
    path : str or Path
        The manifest file; created by :meth:`save` if missing.
    """

    def __init__(self, path: str | Path, meta: dict | None = None):
        self.path = Path(path)
        self.meta: dict = dict(meta or {})
        self.entries: dict[str, dict] = {}

    # ---- persistence -------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read a manifest; a corrupt or foreign file raises :class:`ManifestError`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(
                f"manifest {path} is corrupt ({exc}); it is never written half, so this file was "
                f"damaged outside pansim: restore it from git (`git checkout -- {path}`) or "
                "delete it to start over"
            ) from exc
        if (
            not isinstance(data, dict)
            or data.get("format") != FORMAT
            or not isinstance(data.get("entries"), dict)
        ):
            raise ManifestError(f"manifest {path} is not a {FORMAT} file")
        for key, e in data["entries"].items():
            if not isinstance(e, dict) or e.get("status") not in STATUSES:
                raise ManifestError(f"manifest {path}: entry {key!r} has no valid status")
        m = cls(path, data.get("meta"))
        m.entries = data["entries"]
        return m

    @classmethod
    def open(cls, path: str | Path, meta: dict | None = None) -> Manifest:
        """Load ``path`` if it exists, else a new empty manifest with ``meta``."""
        if Path(path).exists():
            return cls.load(path)
        return cls(path, meta)

    def save(self) -> None:
        """Write the whole manifest atomically."""
        write_json_atomic(self.path, {"format": FORMAT, "meta": self.meta, "entries": self.entries})

    @classmethod
    @contextlib.contextmanager
    def update(
        cls, path: str | Path, meta: dict | None = None, timeout: float = 600.0
    ) -> Iterator[Manifest]:
        """Lock ``path``, load it (or start it with ``meta``), yield it, save it atomically.

        The lock (``flock`` on ``<path>.lock``) is held only for the update, so a
        sampler may append jobs while a labeller runs; each side reloads first.
        """
        with file_lock(Path(str(path) + ".lock"), timeout=timeout):
            m = cls.open(path, meta)
            yield m
            m.save()

    # ---- jobs --------------------------------------------------------------
    def add(self, key: str, job: dict, provenance: dict, content_hash: str) -> bool:
        """Queue a job; returns False if it is already there with the same content.

        A different job under an existing key raises :class:`ManifestError`: a
        finished label must never be silently replaced by another structure.
        """
        old = self.entries.get(key)
        if old is not None:
            if old["hash"] != content_hash:
                raise ManifestError(f"{self.path}: job {key!r} exists with different content")
            return False
        self.entries[key] = {
            "status": "pending",
            "hash": content_hash,
            "job": job,
            "provenance": provenance,
        }
        return True

    def pending(self, retry_failed: bool = False) -> list[str]:
        """Keys still to run, in insertion (sampling) order."""
        todo = ("pending", "failed") if retry_failed else ("pending",)
        return [k for k, e in self.entries.items() if e["status"] in todo]

    def done(self) -> list[str]:
        """Keys with finished labels, in insertion order."""
        return [k for k, e in self.entries.items() if e["status"] == "done"]

    def mark_done(self, key: str, result: dict) -> None:
        """Record a finished label (never overwrites a finished one)."""
        e = self.entries[key]
        if e["status"] == "done":
            raise ManifestError(
                f"{self.path}: job {key!r} is already labelled; refusing to relabel"
            )
        e.update(status="done", result=result)
        e.pop("error", None)

    def mark_failed(self, key: str, error: str) -> None:
        """Record a failure with its reason; the job is skipped by later runs."""
        e = self.entries[key]
        if e["status"] == "done":
            raise ManifestError(f"{self.path}: job {key!r} is already labelled")
        e.update(status="failed", error=str(error)[-2000:])

    def counts(self) -> Counter:
        """Number of jobs per status."""
        return Counter(e["status"] for e in self.entries.values())


def pending_labels(folder: str | Path) -> int:
    """Configurations of the dataset in ``folder`` still to label.

    0 without a manifest, and 0 for a merged dataset (:data:`GROWN_FORMAT`: merging
    takes finished labels only).
    """
    path = Path(folder) / "manifest.json"
    if not path.exists():
        return 0
    try:
        if json.loads(path.read_text()).get("format") == GROWN_FORMAT:
            return 0
    except (json.JSONDecodeError, AttributeError):
        pass  # Manifest.load names the problem
    return Manifest.load(path).counts().get("pending", 0)


def unfinished_labels(folder: str | Path, system: str) -> str | None:
    """Why training on the dataset in ``folder`` should wait, or None when it is fully labelled.

    A run trained on a partly labelled dataset would count as done and never be redone,
    so the training plans (``scripts/train_pretrained.py``, ``pansim_nequip.comparison``)
    skip such systems unless told ``--allow-incomplete-data``.
    """
    pending = pending_labels(folder)
    if not pending:
        return None
    return (
        f"{Path(folder) / 'manifest.json'} has {pending} configurations still to label: "
        f"finish `pansim data label {system}` first (or pass --allow-incomplete-data)"
    )
