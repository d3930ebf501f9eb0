#!/usr/bin/env bash
# Reproduces the long-suite tables of benchmarks/tracking.md (edgekd track eval --suite long: 300-frame sequences of the
# test faces, every method anchored and chained, failures counted), in parts that can run side by side:
#   bash benchmarks/tracking_long.sh classical   # LK, NCC, SIFT, ORB × anchored/chained, 4 faces
#   bash benchmarks/tracking_long.sh dfe         # the shipped DFE encoder × anchored/chained/group, 4 faces
#   bash benchmarks/tracking_long.sh ablation    # the recipe ablation (one encoder per arm) + NCC, 2 faces, anchored
#   python benchmarks/tracking_long.py           # merges the parts into benchmarks/tracking/long/summary.json + tables
# Ablation encoders come from: edgekd track train --epochs 10 --train-crops 15000 --out runs/dfe-ablation/ARM with
#   paper: --recipe paper · norm: --recipe paper --norm-radius 8 · photometric: --recipe paper --photometric ·
#   robust: --recipe robust   (the shipped encoder is robust, exported with: edgekd track export --model runs/dfe-ablation/robust/dfe_autoencoder.pt)
set -euo pipefail
DATA=${DATA:-../shared/data/faces}
OUT=benchmarks/tracking/long
ENC=${ENC:-export/dfe-encoder/model.onnx}
run() { python -m edgekd track eval --data "$DATA" --suite long --frames 300 "$@"; }
case ${1:-} in
  classical) run --images 4 --methods lk,ncc,sift,orb --variants anchored,chained --out-dir $OUT/classical ;;
  dfe) run --images 4 --methods dfe --variants anchored,chained,group --encoder "$ENC" --out-dir $OUT/dfe ;;
  ablation)
    args=()
    for arm in ${ARMS:-paper norm photometric robust}; do args+=(--encoder runs/dfe-ablation/$arm/dfe_autoencoder.pt); done
    if [[ -n "${OLD:-}" ]]; then args+=(--encoder "$OLD"); fi
    run --images 2 --methods ncc,dfe --variants anchored "${args[@]}" --out-dir $OUT/ablation ;;
  *) echo "usage: $0 classical|dfe|ablation" >&2; exit 2 ;;
esac
