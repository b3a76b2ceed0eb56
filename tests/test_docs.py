"""Every ``docs/spec.md §N.M`` cited in the code names a section that exists."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sections() -> set[str]:
    text = (ROOT / "docs" / "spec.md").read_text()
    return set(re.findall(r"^#+ (\d+(?:\.\d+)*)\.? ", text, flags=re.M))


def test_cited_spec_sections_exist():
    files = subprocess.run(
        ["git", "ls-files", "*.py", "*.md", "*.yaml"], capture_output=True, text=True, cwd=ROOT
    ).stdout.split()
    cited = {}
    for name in files:
        path = ROOT / name
        if path.is_file():
            for section in re.findall(r"docs/spec\.md §(\d+(?:\.\d+)*)", path.read_text()):
                cited.setdefault(section, name)
    sections = _sections()
    assert {"1.1", "1.2", "1.3", "2.1", "2.2", "2.3", "2.4", "3"} <= sections
    assert len(cited) >= 5
    missing = {s: f for s, f in cited.items() if s not in sections}
    assert not missing, f"cited sections missing from docs/spec.md: {missing}"


def test_no_code_points_at_a_spec_file_outside_the_repository():
    out = subprocess.run(
        ["git", "grep", "-l", "-e", "shared/SPEC", "--", "*.py", ":!tests/test_docs.py"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == ""
