"""The file protocol every DFT worker follows: read a job, run it, write its result.

Standard library only: it is imported by workers that run under different
pythons (``gpaw_worker.py`` under the system python, as a script from this
folder; ``pyscf_worker.py`` under the venv, as ``pansim.data.workers``).
"""

import json
import os
import signal
import sys
import traceback

#: environment variable with the pid of the labeller that started the worker
PARENT_ENV = "PANSIM_LABELLER_PID"


def die_with_parent():
    """Make this worker die when the labeller that started it dies (``kill -9`` included).

    On Linux the kernel sends SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``
    through ctypes); if the labeller named in :data:`PARENT_ENV` is already gone
    (killed before the signal was armed), the worker exits at once. Elsewhere
    this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    expected = os.environ.get(PARENT_ENV)
    if expected and expected.isdigit() and not _alive(int(expected)):
        os._exit(3)  # the labeller died before the signal was armed


def _alive(pid):
    """Whether process ``pid`` exists (a wrapper between labeller and worker is allowed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_json_atomic(path, payload):
    """Write ``payload`` as JSON to ``path`` through a temporary file, fsync and ``os.replace``."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def failure(exc):
    """The result recorded for a job that raised ``exc``; call it in the ``except`` block."""
    return {
        "ok": False,
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": traceback.format_exc()[-2000:],
    }


def main(argv, run, default_log=None, write=write_json_atomic):
    """Run ``run(spec, log)`` on the job of ``argv[1]``, write its result to ``argv[2]``.

    ``argv[3]``, when given, is the log passed to ``run`` (else ``default_log``).
    Every exception becomes a recorded :func:`failure` and exit code 2; success is 0.
    """
    die_with_parent()
    inp, outp = argv[1], argv[2]
    log = argv[3] if len(argv) > 3 else default_log
    with open(inp) as fh:
        spec = json.load(fh)
    try:
        result = run(spec, log)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded failure
        write(outp, failure(exc))
        return 2
    write(outp, result)
    return 0
