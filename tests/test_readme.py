"""The README's usage example runs as written and its links point at real files."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_python_example_runs(capsys):
    code = re.findall(r"```python\n(.*?)```", README, re.S)[0]
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 (the project's own README)
    printed = capsys.readouterr().out.splitlines()
    energy = float(printed[-3])  # energy, first force row, stress (libraries may print before)
    assert energy < 0  # a bound crystal: negative total energy in eV
    assert printed[-2].startswith("[") and printed[-1].startswith("[")


def test_readme_documentation_links_exist():
    paths = set(re.findall(r"`((?:docs|data|configs)/[\w./-]+\.md)`", README))
    assert paths, "the README names no documentation pages"
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"README names missing pages: {missing}"


def test_readme_is_short():
    assert len(README.splitlines()) < 200
