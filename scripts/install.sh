#!/usr/bin/env bash
# Install pansim into ./.venv (idempotent). Usage: bash scripts/install.sh [--dev] [--dft]
#   (none)  pansim and its dependencies: the calculator, training, workflows, CLI
#   --dft   also the DFT labelling stack: GPAW + PAW setups from Debian (system python,
#           needs root and apt) and the pansim[dft] extra (PySCF, tblite)
#   --dev   tests and linters (pansim[dev]); includes --dft, since the test suite runs a
#           real GPAW and PySCF single point (tests/data/test_dft.py)
# torch is pinned to the CPU build 2.13.0 first. apt waits up to 5 minutes for a dpkg
# lock held by another apt process (unattended upgrades) instead of failing at once.
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0; DFT=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1; DFT=1 ;;
    --dft) DFT=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "[install] unknown option $arg (use --dev, --dft)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
APT_WAIT=(-o DPkg::Lock::Timeout=300)

if [[ $DFT == 1 ]] && ! /usr/bin/python3 -c "import gpaw" >/dev/null 2>&1; then
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    echo "[install] apt-get install gpaw gpaw-data (DFT labelling, system python)"
    (apt-get "${APT_WAIT[@]}" update -qq || true) >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get "${APT_WAIT[@]}" install -y -qq gpaw gpaw-data >/dev/null
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
if [[ $DEV == 1 ]]; then EXTRA="[dev]"; elif [[ $DFT == 1 ]]; then EXTRA="[dft]"; else EXTRA=""; fi
echo "[install] pansim$EXTRA"
$PIP install -q -e ".$EXTRA" 2> >(grep -v "is ignored: it is neither" >&2)
.venv/bin/python -c "import pansim" 
echo "[install] done: $(.venv/bin/python -c 'import torch, pansim; print("pansim", pansim.__version__, "torch", torch.__version__)')"
