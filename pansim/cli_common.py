"""What every ``pansim`` subcommand shares: the error layer, option types, run folders, progress.

- **Error layer** (:func:`run_command`): expected failures (a missing or
  unreadable file, an unknown model, an unwritable ``--out``, a structure with
  elements the model does not know, a bad value) end in one line
  ``pansim CMD: error: ...`` and exit status 2; ``--debug`` shows the traceback.
- **Option types** (:func:`number`): numeric options are checked by argparse at
  parse time (``--steps -5`` is a usage error naming the option and the range).
- **Model options** (:func:`add_model_arguments`): ``--model`` (default: the
  shipped default model, never a silent EMT), ``--device``, ``--dtype``, ``--threads``.
- **Run folders** (:func:`default_out`): without ``--out`` a command writes into a
  fresh ``runs/<command>-<model>-<UTC time>/`` (``runs/`` is git-ignored), never
  into committed files.
- **Progress** (:func:`progress`): tqdm bars on stderr; off with ``-q``, and by
  default when stderr is not a terminal (logs, CI).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import math
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pansim._compat import LIBRARY_NOISE, show_library_noise

T = TypeVar("T")

#: the model ``--model`` defaults to (the shipped default of ``pansim.pretrained``)
DEFAULT_MODEL = "si"

#: ``None``: tqdm decides (bars on a terminal only); ``False``: never (``-q``); ``True``: always
PROGRESS: dict[str, bool | None] = {"enabled": None}


class CLIError(Exception):
    """An expected failure of a subcommand: its message is printed as one line, no traceback."""


# --------------------------------------------------------------------------- option types
def number(
    kind: type = float,
    *,
    min: float | None = None,  # noqa: A002 - reads naturally at the call site
    max: float | None = None,  # noqa: A002
    strict_min: bool = False,
    unit: str = "",
) -> Callable[[str], Any]:
    """An argparse ``type=`` that parses ``kind`` and checks ``min <= value <= max``.

    ``strict_min`` makes the lower bound exclusive (``value > min``). NaN and
    infinities are refused. The error names the accepted range (and unit).
    """

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'an integer' if kind is int else 'a number'}"
            ) from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        low_bad = min is not None and (value <= min if strict_min else value < min)
        if low_bad or (max is not None and value > max):
            accepted = _range(min, max, strict_min, unit)
            raise argparse.ArgumentTypeError(f"{text} is outside {accepted}")
        return value

    parse.__name__ = kind.__name__  # argparse's "invalid int value" wording
    return parse


def _range(low: float | None, high: float | None, strict: bool, unit: str) -> str:
    """Human text of an accepted range, e.g. ``(0, inf) fs``."""
    left = "(-inf" if low is None else f"{'(' if strict else '['}{low:g}"
    right = "inf)" if high is None else f"{high:g}]"
    return f"the accepted range {left}, {right}" + (f" {unit}" if unit else "")


#: common option types
positive_int = number(int, min=1)
nonnegative_int = number(int, min=0)
positive_float = number(float, min=0.0, strict_min=True)
nonnegative_float = number(float, min=0.0)
fraction = number(float, min=0.0, max=1.0, strict_min=True)


# --------------------------------------------------------------------------- options
class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` for options whose default means something (not None/False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, argparse.SUPPRESS) or action.default == []:
            return action.help or ""
        return super()._get_help_string(action)


def add_global_flags(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """``--debug``, ``-q/--quiet`` and ``-v/--verbose``, accepted before or after the command.

    On subcommand parsers the defaults are suppressed so that a flag given before
    the command is not reset by the subparser.
    """
    default = (lambda value: value) if top_level else (lambda value: argparse.SUPPRESS)
    parser.add_argument(
        "--debug", action="store_true", default=default(False), help="show tracebacks of errors"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default(False), help="print errors only"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="more log output (-vv: debug)",
    )


def add_model_arguments(parser: argparse.ArgumentParser, *, default: str | None = DEFAULT_MODEL):
    """``--model``, ``--device``, ``--dtype``, ``--threads`` (every model-using subcommand)."""
    parser.add_argument(
        "--model",
        default=default,
        help="pretrained name (`pansim models`), model file, or ASE's 'emt'/'lj' (tests, demos)",
    )
    add_runtime_arguments(parser)


def add_runtime_arguments(
    parser: argparse.ArgumentParser, *, device: bool = True, dtype: bool = True
) -> None:
    """``--device``, ``--dtype`` (each unless switched off) and ``--threads``."""
    if device:
        parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    if dtype:
        parser.add_argument(
            "--dtype", choices=["float64", "float32"], default="float64", help="model precision"
        )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: torch's choice; 1 is often fastest on a shared machine)",
    )


def apply_runtime(args: argparse.Namespace) -> None:
    """Apply ``--threads`` (asked for by the user) and check ``--device`` before any model loads."""
    threads = getattr(args, "threads", None)
    device = getattr(args, "device", None)
    if threads is None and device in (None, "cpu"):
        return
    import torch

    if threads is not None:
        torch.set_num_threads(int(threads))
    if device not in (None, "cpu"):
        try:
            dev = torch.device(device)
        except RuntimeError as err:
            raise CLIError(f"--device {device!r}: {err}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise CLIError(f"--device {device!r}: CUDA is not available on this machine")


def model_label(model: str | None) -> str:
    """A short, file-name-safe label of a ``--model`` value (name or file stem)."""
    if not model:
        return "model"
    stem = Path(model).stem if Path(model).suffix else Path(model).name
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "model"


def default_out(command: str, model: str | None, root: str | os.PathLike = "runs") -> Path:
    """A fresh run folder ``root/<command>-<model>-<UTC time>`` (suffix -2, -3... if taken)."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{command}-{model_label(model)}-{stamp}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def prepare_out(path: str | os.PathLike) -> Path:
    """Create the output folder and check that it is writable (:class:`CLIError` if not)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CLIError(f"--out {str(path)!r} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".pansim-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise CLIError(f"--out {str(path)!r} is not writable ({err.strerror or err})") from None
    return path


# --------------------------------------------------------------------------- structures
def read_structure(path: str | os.PathLike | None, index: Any = 0):
    """Read ``path`` with ``ase.io.read`` (first frame by default); errors name the file."""
    from ase.io import read

    if path is None:
        raise CLIError("give --structure FILE (or 'structure:' in the --config file)")
    path = Path(path)
    if not path.exists():
        raise CLIError(f"structure file {str(path)!r} does not exist")
    if path.is_dir():
        raise CLIError(f"structure file {str(path)!r} is a folder")
    try:
        atoms = read(path, index=index)
    except Exception as err:  # noqa: BLE001 - ase raises many types for bad files
        why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CLIError(f"cannot read structure file {str(path)!r}: {why}") from err
    frames = atoms if isinstance(atoms, list) else [atoms]
    if not frames or any(len(a) == 0 for a in frames):
        raise CLIError(f"structure file {str(path)!r} holds no atoms")
    return atoms


def check_elements(calc: Any, atoms: Any) -> None:
    """Refuse a structure with elements the model cannot evaluate (before any work starts)."""
    from ase.data import chemical_symbols

    present = sorted(set(int(z) for z in atoms.numbers))
    known = getattr(calc, "atomic_numbers", None)
    if known is None and type(calc).__name__ == "EMT":
        from ase.calculators.emt import parameters
        from ase.data import atomic_numbers

        known = [atomic_numbers[symbol] for symbol in parameters]
    if known is None:
        return
    missing = [chemical_symbols[z] for z in present if z not in set(known)]
    if missing:
        supported = ", ".join(chemical_symbols[z] for z in sorted(known))
        raise CLIError(
            f"the model cannot evaluate element(s) {', '.join(missing)} of this structure; "
            f"it knows {supported}"
        )


# --------------------------------------------------------------------------- progress
def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "") -> Iterator[T]:
    """``iterable`` wrapped in a tqdm bar on stderr (see :data:`PROGRESS`)."""
    from tqdm.auto import tqdm

    enabled = PROGRESS["enabled"]
    disable = (not enabled) if enabled is not None else None  # None: tty only
    yield from tqdm(iterable, total=total, desc=desc, disable=disable, leave=False, file=sys.stderr)


def progress_bar(total: int, desc: str = ""):
    """A manual tqdm bar (``update(n)``, ``close()``) that follows :data:`PROGRESS`."""
    from tqdm.auto import tqdm

    enabled = PROGRESS["enabled"]
    disable = (not enabled) if enabled is not None else None
    return tqdm(total=total, desc=desc, disable=disable, leave=False, file=sys.stderr)


# --------------------------------------------------------------------------- error layer
def expected_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input, not a bug: one line, no traceback."""
    from pansim.pretrained import RegistryError, UnknownModelError

    found: list[type[BaseException]] = [
        CLIError,
        OSError,
        ValueError,
        NotImplementedError,  # e.g. EMT on an element it lacks, stress of a molecule
        UnknownModelError,
        RegistryError,
    ]
    with contextlib.suppress(ImportError):
        from ase.io.formats import UnknownFileTypeError

        found.append(UnknownFileTypeError)
    return tuple(found)


def _one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (OSError: strerror and file name)."""
    if isinstance(err, OSError) and err.strerror:
        where = f": {err.filename!r}" if err.filename else ""
        return f"{err.strerror}{where}"
    text = " ".join(str(err).split()) or type(err).__name__
    ours = type(err).__module__.split(".")[0] in ("pansim", "workflows")  # they name the problem
    return text if ours else f"{text} ({type(err).__name__})"


def configure(args: argparse.Namespace) -> None:
    """Apply ``-q``/``-v``: logging level and progress bars."""
    verbose, quiet = int(getattr(args, "verbose", 0) or 0), bool(getattr(args, "quiet", False))
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    if quiet or verbose:
        logging.basicConfig(format="%(message)s")  # a stderr handler, unless one exists
        logging.getLogger("pansim").setLevel(level)
    if quiet:
        PROGRESS["enabled"] = False


def resolve_out(command: str, args: argparse.Namespace) -> None:
    """Fill ``args.out`` with a fresh run folder when the command uses one and none was given.

    Commands opt in with ``parser.set_defaults(run_folder=True)`` (see
    :func:`add_out_argument`); the folder is created and checked for writing.
    """
    if not getattr(args, "run_folder", False):
        return
    if getattr(args, "out", None) == "-":
        raise CLIError(
            "--out names an output folder (result files and plots); '-' (standard output) "
            "is not one: give a folder, or leave --out out for a new run folder"
        )
    if getattr(args, "out", None) is None:
        args.out = str(default_out(command, getattr(args, "model", None)))
        args.out_is_new = True
        print(f"output folder: {args.out}", file=sys.stderr)
    prepare_out(args.out)


def _remove_if_empty(args: argparse.Namespace) -> None:
    """Remove a fresh run folder that a failed command left empty."""
    if getattr(args, "out_is_new", False):
        with contextlib.suppress(OSError):
            Path(args.out).rmdir()


def add_out_argument(parser: argparse.ArgumentParser, what: str = "result.json, plot.png") -> None:
    """``--out`` (default: a fresh ``runs/<command>-<model>-<time>/``)."""
    parser.add_argument(
        "--out",
        default=None,
        help=f"output folder ({what}); default: a new runs/<command>-<model>-<UTC time>/",
    )
    parser.set_defaults(run_folder=True)


def run_command(command: str, func: Callable[[argparse.Namespace], Any], args) -> int:
    """Run ``func(args)`` under the error layer; return its exit code (2 on an expected error)."""
    configure(args)
    debug = bool(getattr(args, "debug", False))
    quiet = bool(getattr(args, "quiet", False))
    try:
        apply_runtime(args)
        resolve_out(command, args)
        with open(os.devnull, "w") if quiet else contextlib.nullcontext() as sink:
            with contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext():
                verbose = bool(getattr(args, "verbose", 0))
                with warnings.catch_warnings(), show_library_noise(verbose):
                    if not verbose:  # library noise shows with -v only
                        for message in LIBRARY_NOISE:
                            warnings.filterwarnings("ignore", message=message)
                    return int(func(args) or 0)
    except BrokenPipeError:  # handled by pansim.cli.main like coreutils
        raise
    except KeyboardInterrupt:
        _remove_if_empty(args)
        print(f"pansim {command}: interrupted", file=sys.stderr)
        return 130
    except expected_errors() as err:
        _remove_if_empty(args)
        if debug:
            traceback.print_exc()
        print(f"pansim {command}: error: {_one_line(err)}", file=sys.stderr)
        if not debug:
            print("(run with --debug for the traceback)", file=sys.stderr)
        return 2


def version_text() -> str:
    """``pansim X.Y.Z (torch A, ase B, python C)`` without importing torch."""
    from importlib import metadata

    def v(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    import platform

    import pansim

    return (
        f"pansim {pansim.__version__} (torch {v('torch')}, mace-torch {v('mace-torch')}, "
        f"ase {v('ase')}, python {platform.python_version()})"
    )
