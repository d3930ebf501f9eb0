#!/usr/bin/env bash
# Reproduces the standard-suite tables of benchmarks/tracking.md: every tracker on the 45-frame ground-truth sequences
# (test faces from ../shared/data/faces moved by known motions), DFE once per exported encoder file (format × runtime);
# writes each file's error and INT8 gate verdict into export/dfe-encoder/card.json. The long suite: tracking_long.sh.
set -euo pipefail
DATA=${DATA:-../shared/data/faces}
python -m edgekd track eval --data "$DATA" --images 4 --frames 45 --out-dir benchmarks/tracking \
  --encoder export/dfe-encoder/model.pt \
  --encoder export/dfe-encoder/model.onnx \
  --encoder export/dfe-encoder/model.int8.onnx \
  --encoder export/dfe-encoder/model.int8-mixed.onnx \
  --encoder export/dfe-encoder/model.tflite \
  --encoder export/dfe-encoder/model.int8.tflite \
  --encoder export/dfe-encoder/model.int8-mixed.tflite
