"""pansim._memory: freed tensors stay in the process (glibc); reusing them costs no faults."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import ctypes, resource, sys
import pansim._memory as m
keep = sys.argv[1] == "1"
applied = keep and m.keep_freed_memory()
assert not keep or m.keep_freed_memory() == applied  # idempotent
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 64 << 20
def touch():
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch()  # 64 MiB, freed at once
before = faults()
touch()
print(applied, faults() - before)
"""


def _faults(keep: bool) -> tuple[bool, int]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, "1" if keep else "0"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    applied, faults = done.stdout.split()
    return applied == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_keep_freed_memory_reuses_pages():
    applied, kept = _faults(True)
    if not applied:
        pytest.skip("not glibc")
    _, fresh = _faults(False)
    assert fresh > 10000  # 64 MiB = 16384 pages faulted in afresh (no THP)
    assert kept < 1000  # the freed block is reused (glibc malloc; torch memaligns, see _memory)


@pytest.mark.parametrize("keep", [True, False])
def test_calculator_keep_memory_switch(monkeypatch, tiny_model_factory, keep):
    import pansim.calculator as calculator

    calls = []
    monkeypatch.setattr(calculator, "keep_freed_memory", lambda: calls.append(1))
    calculator.PANCalculator(tiny_model_factory(), keep_memory=keep)
    assert calls == ([1] if keep else [])


def test_calculator_default_leaves_malloc_alone(monkeypatch, tiny_model_factory):
    import pansim.calculator as calculator

    calls = []
    monkeypatch.setattr(calculator, "keep_freed_memory", lambda: calls.append(1))
    calculator.PANCalculator(tiny_model_factory())
    assert calls == []


def test_public_opt_in_is_the_same_function():
    import pansim
    from pansim import _memory

    assert pansim.keep_freed_memory is _memory.keep_freed_memory


def test_cli_keeps_freed_memory_for_its_own_process(monkeypatch):
    from pansim import _memory, cli

    calls = []
    monkeypatch.setattr(_memory, "keep_freed_memory", lambda: calls.append(1))
    assert cli.main(["models"]) == 0
    assert calls == [1]
