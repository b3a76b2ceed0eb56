"""Fixtures of the data-pipeline tests: a temporary data directory."""

import pytest


@pytest.fixture
def root(tmp_path):
    """An empty datasets folder."""
    return tmp_path / "data"
