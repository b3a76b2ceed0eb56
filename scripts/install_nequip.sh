#!/usr/bin/env bash
# Second environment for the NequIP/Allegro extension (issue 7), idempotent.
# Usage: bash scripts/install_nequip.sh
#   ./.venv-nequip: torch 2.13.0 (CPU build, installed first so that no CUDA build is pulled),
#   nequip + nequip-allegro (they need e3nn >= 0.6, mace-torch pins 0.4.4, hence a separate venv),
#   pansim itself without its dependencies (no mace-torch), and pansim_nequip, the extension.
# The main environment ./.venv is never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv-nequip
TORCH_VERSION=2.13.0
NEQUIP_VERSION=0.19.1
ALLEGRO_VERSION=0.8.3

quiet_pip() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither" >&2); }

[[ -x $VENV/bin/python ]] || "$PY" -m venv "$VENV"
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  echo "[install_nequip] torch==$TORCH_VERSION (CPU build)"
  quiet_pip install -q "torch==$TORCH_VERSION"
fi
if ! "$VENV/bin/python" -c "import nequip, allegro" >/dev/null 2>&1; then
  echo "[install_nequip] nequip==$NEQUIP_VERSION nequip-allegro==$ALLEGRO_VERSION"
  quiet_pip install -q "torch==$TORCH_VERSION" "nequip==$NEQUIP_VERSION" \
    "nequip-allegro==$ALLEGRO_VERSION" "ase>=3.23" "numpy>=1.24" "pytest>=8"
fi
# installed distributions, not importability: from the repository root both import anyway
if ! "$VENV/bin/python" -c "import importlib.metadata as m; m.version('pansim'); m.version('pansim-nequip')" \
    >/dev/null 2>&1; then
  echo "[install_nequip] pansim (--no-deps) and pansim_nequip (editable)"
  quiet_pip install -q --no-deps -e .
  quiet_pip install -q --no-deps -e ./pansim_nequip
fi
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md

print("[install_nequip] done:", ", ".join(
    f"{p} {md.version(p)}" for p in ("torch", "e3nn", "nequip", "nequip-allegro", "pansim", "pansim-nequip")))
PY
