#!/usr/bin/env bash
# CI for the NequIP / Allegro extension (issue 7): create or update the second environment
# (.venv-nequip, idempotent) and run tests_nequip/ in it. Extra arguments go to pytest.
# Usage: bash scripts/test_nequip.sh [-x] [-k invariants]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_nequip.sh
exec .venv-nequip/bin/python -m pytest tests_nequip -q -p no:cacheprovider "$@"
