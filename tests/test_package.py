import os
import subprocess
import sys


def test_import_does_not_change_environment():
    code = (
        "import os; before = dict(os.environ); import pansim;"
        " from pansim._compat import import_mace; import_mace();"
        " assert dict(os.environ) == before, set(os.environ) ^ set(before); print('ok')"
    )
    env = {k: v for k, v in os.environ.items() if k != "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "ok"


def test_cli_help_lists_commands():
    from pansim.cli import COMMANDS, build_parser

    text = build_parser([]).format_help()
    for name in COMMANDS:
        assert name in text
