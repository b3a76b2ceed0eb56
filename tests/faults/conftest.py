"""Fault injection: kill -9 at chosen or random points, then check what is left.

Every test here is marked ``faults``; the quick ones run by default, the
repeated random kills are also marked ``slow`` (``pytest -m faults`` runs all).
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from _fault_tools import HERE, ROOT


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == HERE:
            item.add_marker(pytest.mark.faults)


class Victim:
    """A child process of ``_victim.py`` that can be killed with SIGKILL."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        # stderr to a file: an unread pipe fills up and blocks the child
        self.stderr_file = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_victim.py"), *map(str, args)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.stderr_file,
            text=True,
            cwd=ROOT,
        )

    def stderr(self) -> str:
        """Everything the child wrote to stderr so far."""
        self.stderr_file.seek(0)
        return self.stderr_file.read()

    def wait_ready(self, timeout: float = 120.0) -> None:
        for line in self.proc.stdout:  # libraries print notices before it
            if line.strip() == "ready":
                return
        raise AssertionError(f"the victim exited before it was ready: {self.stderr()[-2000:]}")

    def kill_after(self, seconds: float) -> None:
        time.sleep(seconds)
        self.proc.kill()
        self.proc.wait()

    def wait(self, timeout: float = 600.0) -> int:
        return self.proc.wait(timeout)


@pytest.fixture
def victim():
    made = []

    def make(*args):
        v = Victim(*args)
        made.append(v)
        return v

    yield make
    for v in made:
        if v.proc.poll() is None:
            v.proc.kill()
            v.proc.wait()
