#!/usr/bin/env bash
# Install pansim into ./.venv (idempotent). Usage: bash scripts/install.sh [--dev]
#   - GPAW + PAW setups from Debian for the system python (DFT labelling only)
#   - torch pinned to the CPU build 2.13.0, then pansim and its dependencies
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0; [[ "${1:-}" == "--dev" ]] && DEV=1
PY=${PYTHON:-python3}

if ! /usr/bin/python3 -c "import gpaw" >/dev/null 2>&1; then
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    echo "[install] apt-get install gpaw gpaw-data (DFT labelling, system python)"
    (apt-get update -qq || true) >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gpaw gpaw-data >/dev/null
  else
    echo "[install] warning: GPAW missing and apt-get unavailable; DFT labelling of crystals disabled" >&2
  fi
fi

[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip"
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  echo "[install] torch==2.13.0 (CPU build)"
  $PIP install -q torch==2.13.0
fi
if [[ $DEV == 1 ]]; then EXTRA="[dev]"; else EXTRA="[dft]"; fi
echo "[install] pansim$EXTRA"
$PIP install -q -e ".$EXTRA" 2> >(grep -v "is ignored: it is neither" >&2)
.venv/bin/python -c "import pansim" 
echo "[install] done: $(.venv/bin/python -c 'import torch, pansim; print("pansim", pansim.__version__, "torch", torch.__version__)')"
