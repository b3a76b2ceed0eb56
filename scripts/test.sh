#!/usr/bin/env bash
# The project's one test command (README "Quick start"; .ci/run calls it unchanged):
#   1. main environment (.venv: pansim + mace-torch): install (idempotent), then pytest tests/;
#   2. NequIP/Allegro extension (.venv-nequip: nequip + e3nn >= 0.6, issue 7): install
#      (idempotent), then pytest tests_nequip/ (scripts/test_nequip.sh).
# Both parts run even when the first fails; the exit status is non-zero if either failed.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
bash scripts/install.sh --dev && .venv/bin/python -m pytest -q || status=1
bash scripts/test_nequip.sh || status=1
exit $status
