"""The subcommand registry: pansim's own commands, the workflows' through pansim.commands."""

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

import pansim.commands as commands
from pansim import cli

ROOT = Path(__file__).resolve().parents[1]


def _entry_points_in_setup_cfg() -> dict[str, str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options.entry_points"]["pansim.commands"].strip().splitlines()
    return dict((part.strip() for part in line.split("=")) for line in lines)


def test_setup_cfg_entry_points_match_the_workflows_list():
    import workflows

    assert _entry_points_in_setup_cfg() == workflows.COMMANDS


def test_help_lists_pansim_and_workflow_commands():
    import workflows

    text = cli.build_parser([]).format_help()
    for name in [*cli.COMMANDS, *workflows.COMMANDS]:
        assert name in text
    assert "Equation of state" in text  # help read from the module docstring


def test_workflow_command_runs_through_the_registry(capsys):
    assert cli.main(["molref", "aspirin"]) == 2
    assert "no reference recipe for 'aspirin'" in capsys.readouterr().err


def test_fallback_registration_when_no_entry_point(monkeypatch):
    monkeypatch.setattr(commands, "entry_points", lambda group: [])
    monkeypatch.setattr(commands, "_registered", {})
    found = commands.plugin_commands()
    assert found["eos"] == ("workflows.eos", "")
    assert found["validate"][0] == "workflows.validate"


def test_registered_command_never_replaces_a_pansim_command(monkeypatch):
    monkeypatch.setattr(commands, "_registered", {})
    commands.register_command("train", "somewhere.else", "not this one")
    commands.register_command("hello", "json.tool", "")
    table = cli._commands()
    assert table["train"] == cli.COMMANDS["train"]
    assert table["hello"][0] == "json.tool"
    assert table["hello"][1]  # json.tool's docstring


@pytest.mark.parametrize("name", ["", "-x", "two words"])
def test_bad_command_name_is_refused(name):
    with pytest.raises(ValueError, match="invalid command name"):
        commands.register_command(name, "json.tool")


def test_pansim_help_does_not_import_workflow_modules():
    code = (
        "import sys; from pansim import cli; cli.build_parser([]).format_help();"
        " print(sorted(m for m in sys.modules if m.startswith('workflows.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
