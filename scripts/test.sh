#!/usr/bin/env bash
# The project's one test command (README "Quick start"; .ci/run calls it unchanged):
#   1. main environment (.venv: pansim + mace-torch): install (idempotent), then lint
#      (ruff check, ruff format --check, the import contracts of .importlinter), then
#      pytest tests/;
#   2. NequIP/Allegro extension (.venv-nequip: nequip + e3nn >= 0.6, issue 7): install
#      (idempotent), then pytest tests_nequip/ (scripts/test_nequip.sh).
# Every part runs even when one fails; the exit status is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
if bash scripts/install.sh --dev; then
  (.venv/bin/ruff check . && .venv/bin/ruff format --check .) || status=1
  .venv/bin/lint-imports || status=1
  .venv/bin/python -m pytest -q || status=1
else
  status=1
fi
bash scripts/test_nequip.sh || status=1
exit $status
