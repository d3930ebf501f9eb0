#!/usr/bin/env bash
# The paper's Student / KD / KD+IG question on one GPU in ~12 minutes (see benchmarks/gpu_protocol.py).
#   bash benchmarks/gpu_protocol.sh [--data ../shared/data/cifar10-png.zip] [--minutes 12]
# Writes runs/gpu-protocol/results.json; copy it to benchmarks/gpu_protocol.json to publish.
set -euo pipefail
cd "$(dirname "$0")/.."
exec timeout 15m python3 benchmarks/gpu_protocol.py "$@"
