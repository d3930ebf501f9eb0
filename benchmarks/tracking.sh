#!/usr/bin/env bash
# Reproduces benchmarks/tracking.md: every tracker on the ground-truth sequences
# (held-out faces from ../shared/data/faces moved by known motions).
# DFE is run once per exported encoder file (format × runtime); MSE_MODEL, if given,
# adds the plain-MSE ablation encoder (from: edgekd track train --loss mse --out runs/dfe-mse).
set -euo pipefail
DATA=${DATA:-../shared/data/faces}
EXTRA=()
if [[ -n "${MSE_MODEL:-}" ]]; then EXTRA=(--encoder "$MSE_MODEL"); fi
python -m edgekd track eval --data "$DATA" --images 4 --frames 45 --out-dir benchmarks/tracking \
  --encoder export/dfe-encoder/model.pt \
  --encoder export/dfe-encoder/model.onnx \
  --encoder export/dfe-encoder/model.int8.onnx \
  --encoder export/dfe-encoder/model.int8-mixed.onnx \
  --encoder export/dfe-encoder/model.tflite \
  --encoder export/dfe-encoder/model.int8.tflite \
  --encoder export/dfe-encoder/model.int8-mixed.tflite \
  "${EXTRA[@]}"
