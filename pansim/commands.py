"""The registry of ``pansim`` subcommands that other packages add (plugins).

pansim's own subcommands are listed in :data:`pansim.cli.COMMANDS`. Other
installed packages add theirs through the entry-point group
``pansim.commands``: each entry names a subcommand and the module that defines
``register(parser)`` and ``run(args)``, e.g. in ``setup.cfg``::

    [options.entry_points]
    pansim.commands =
        eos = workflows.eos

The one-line help of such a command is the first line of its module's
docstring, read without importing the module (so ``pansim --help`` stays fast).
Code may also call :func:`register_command` directly (tests, notebooks, a
package whose metadata is not installed). pansim itself imports no plugin: only
when no entry point of the group is installed at all (an editable install made
before the group was declared; ``pip install -e .`` refreshes it) does it ask the
packages of :data:`FALLBACK_PLUGINS`, by name, to call ``register_commands``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Callable
from importlib.metadata import entry_points

#: entry-point group read by :func:`plugin_commands`
GROUP = "pansim.commands"

#: packages asked for ``register_commands(register_command)`` when the group is empty
FALLBACK_PLUGINS = ("workflows",)

_registered: dict[str, tuple[str, str]] = {}


def register_command(name: str, module: str, help: str = "") -> None:  # noqa: A002
    """Add subcommand ``name``, run by ``module`` (``register``/``run``), with ``help``."""
    if not name or name.startswith("-") or " " in name:
        raise ValueError(f"invalid command name {name!r}")
    _registered[name] = (module, help)


def module_summary(module: str) -> str:
    """First line of ``module``'s docstring, read without running the module ('' if none).

    A leading "pansim NAME:" (in double backquotes) is dropped, and so is the full stop.
    """
    try:
        spec = _find_spec_without_import(module)
    except (ImportError, ValueError):
        return ""
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return ""
    with open(spec.origin, encoding="utf-8") as fh:
        doc = ast.get_docstring(ast.parse(fh.read())) or ""
    line = doc.strip().splitlines()[0].rstrip(".") if doc.strip() else ""
    if line.startswith("``pansim") and "``: " in line:
        line = line.split("``: ", 1)[1]
    return line


def _find_spec_without_import(module: str):
    """The spec of ``module`` found on the path, running no package ``__init__`` below the top."""
    import importlib.machinery

    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    for depth in range(len(rest)):
        if spec is None or spec.submodule_search_locations is None:
            return None
        name = ".".join([top, *rest[: depth + 1]])
        spec = importlib.machinery.PathFinder.find_spec(name, list(spec.submodule_search_locations))
    return spec


def plugin_commands() -> dict[str, tuple[str, str]]:
    """Subcommands of installed plugins: ``name -> (module, help)``.

    Entry points of :data:`GROUP` first, then those added by
    :func:`register_command` (which win on a clash).
    """
    found = {ep.name: (ep.value, "") for ep in entry_points(group=GROUP)}
    if not found:
        _ask_fallback_plugins()
    found.update(_registered)
    return found


def _ask_fallback_plugins() -> None:
    """Let each importable package of :data:`FALLBACK_PLUGINS` register its commands."""
    for package in FALLBACK_PLUGINS:
        try:
            module = importlib.import_module(package)
        except ImportError:
            continue
        register: Callable | None = getattr(module, "register_commands", None)
        if callable(register):
            register(register_command)
