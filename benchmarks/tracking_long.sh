#!/usr/bin/env bash
# Reproduces the long-suite tables of benchmarks/tracking.md (edgekd track eval --suite long: 300-frame sequences of the
# test faces, every method anchored and chained, failures counted), in parts that can run side by side:
#   bash benchmarks/tracking_long.sh classical   # LK, NCC, SIFT, ORB × anchored/chained, 4 faces
#   bash benchmarks/tracking_long.sh dfe         # the shipped DFE encoder × anchored/chained/group, 4 faces
#   bash benchmarks/tracking_long.sh ablation    # the recipe ablation (one encoder per arm, the tracker's usual mode) + NCC, 2 faces
#   bash benchmarks/tracking_long.sh matching    # the matching-term ablation (one encoder per weight and width) + OLD (the
#                                                #   previous shipped encoder), DFE group, 4 faces; MATCH_ARMS / PARTDIR split it
#   python benchmarks/tracking_long.py           # merges the parts into benchmarks/tracking/long/summary.json + tables
# Ablation encoders come from: edgekd track train --epochs 10 --train-crops 15000 --out runs/dfe-ablation/ARM with
#   paper: --recipe paper · norm: --recipe paper --norm-radius 8 · photometric: --recipe paper --photometric ·
#   norm-photometric: --recipe robust --no-geometric · robust: --recipe robust
# The shipped encoder continues the norm arm to 30 epochs (edgekd track train --recipe paper --norm-radius 8 --epochs 30
#   --train-crops 15000 --out runs/dfe-normalised --resume, started from a copy of runs/dfe-ablation/norm) and is exported
#   with: edgekd track export --model runs/dfe-normalised/dfe_autoencoder.pt (radius 3).
# Matching-term arms (half width): edgekd track train --recipe normalised --channels 8,16,16,32,64 --match-weight W
#   --epochs 10 --train-crops 15000 --out runs/dfe-matching/wW (W = 0 / 0.01 / 0.05 / 0.2; the validation set includes
#   the JPEG and MPEG-4 motions); full width: --recipe normalised --match-weight 0.05 --out runs/dfe-matching/full-w0.05
#   (= --recipe matched), the shipped encoder since 2026-12-02 (edgekd track export --model runs/dfe-matching/full-w0.05/dfe_autoencoder.pt).
set -euo pipefail
DATA=${DATA:-../shared/data/faces}
OUT=benchmarks/tracking/long
ENC=${ENC:-edgekd/track/weights/dfe-encoder/model.onnx}
run() { python -m edgekd track eval --data "$DATA" --suite long --frames 300 "$@"; }
case ${1:-} in
  classical) run --images 4 --methods lk,ncc,sift,orb --variants anchored,chained --out-dir $OUT/classical ;;
  dfe) run --images 4 --methods dfe --variants ${VARIANTS:-group,anchored,chained} --encoder "$ENC" --out-dir $OUT/dfe ;;
  ablation)
    args=()
    for arm in ${ARMS:-paper norm photometric norm-photometric robust}; do args+=(--encoder runs/dfe-ablation/$arm/dfe_autoencoder.pt); done
    if [[ -n "${OLD:-}" ]]; then args+=(--encoder "$OLD"); fi   # e.g. OLD=runs/dfe-shipped-2026-11/model.onnx
    run --images 2 --methods ncc,orb,dfe "${args[@]}" --out-dir $OUT/ablation ;;
  matching)
    args=()
    for arm in ${MATCH_ARMS:-w0 w0.01 w0.05 w0.2 full-w0.05}; do args+=(--encoder runs/dfe-matching/$arm/dfe_autoencoder.pt); done
    if [[ -n "${OLD:-}" ]]; then args+=(--encoder "$OLD"); fi   # e.g. OLD=runs/dfe-shipped-2026-12-01/model.onnx
    run --images 4 --methods dfe --variants group "${args[@]}" --out-dir $OUT/${PARTDIR:-matching} ;;
  *) echo "usage: $0 classical|dfe|ablation|matching" >&2; exit 2 ;;
esac
