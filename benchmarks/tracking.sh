#!/usr/bin/env bash
# Reproduces the standard-suite tables of benchmarks/tracking.md: every tracker on the 45-frame ground-truth sequences
# (test faces from ../shared/data/faces moved by known motions), DFE once per exported encoder file (format × runtime);
# writes each file's error and INT8 gate verdict into edgekd/track/weights/dfe-encoder/card.json. The long suite: tracking_long.sh.
set -euo pipefail
DATA=${DATA:-../shared/data/faces}
python -m edgekd track eval --data "$DATA" --images 4 --frames 45 --out-dir benchmarks/tracking \
  --encoder edgekd/track/weights/dfe-encoder/model.pt \
  --encoder edgekd/track/weights/dfe-encoder/model.onnx \
  --encoder edgekd/track/weights/dfe-encoder/model.int8.onnx \
  --encoder edgekd/track/weights/dfe-encoder/model.int8-mixed.onnx \
  --encoder edgekd/track/weights/dfe-encoder/model.tflite \
  --encoder edgekd/track/weights/dfe-encoder/model.int8.tflite \
  --encoder edgekd/track/weights/dfe-encoder/model.int8-mixed.tflite
