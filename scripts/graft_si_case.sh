#!/usr/bin/env bash
# Graft worked case (docs/graft.md): si-baseline grafted to pan and pan+pgs, each
# fine-tuned with one recipe (configs/graft/si-finetune.yaml) on the first 48 Si training
# structures, against fine-tuning the plain si-baseline the same way. One 1-thread job at
# a time. Usage: bash scripts/graft_si_case.sh  (from the repository root)
set -euo pipefail
PY=${PYTHON:-python}
OUT=results/graft/si
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
$PY - <<'PYEOF'
import ase.io
frames = ase.io.read("data/si/train.extxyz", ":48")
ase.io.write("results/graft/si/train_subset.extxyz", frames, format="extxyz")
PYEOF
$PY -m pansim graft si-baseline --variant pan --out "$OUT/si-graft-pan.safetensors"
$PY -m pansim graft si-baseline --variant pan+pgs --out "$OUT/si-graft-pan+pgs.safetensors"
for name in baseline pan pan+pgs; do
  if [ "$name" = baseline ]; then init=pansim/pretrained/si-baseline.safetensors
  else init="$OUT/si-graft-$name.safetensors"; fi
  [ -f "$OUT/ft-$name/summary.json" ] && continue  # finished runs are kept
  resume=""; [ -f "$OUT/ft-$name/checkpoint.pt" ] && resume="--resume"
  $PY -m pansim train configs/graft/si-finetune.yaml $resume --init_from "$init" \
    --out_dir "$OUT/ft-$name"
done
$PY -m pansim eval si-baseline data/si/test.extxyz --out "$OUT/eval-source"
for name in baseline pan pan+pgs; do
  $PY -m pansim eval "$OUT/ft-$name/best_model.safetensors" data/si/test.extxyz \
    --out "$OUT/eval-ft-$name"
done
