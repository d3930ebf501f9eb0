#!/usr/bin/env bash
# Install what `edgekd bench` and the device apps need on a Jetson Orin Nano (JetPack 6) — no PyTorch.
#   bash devices/jetson-orin-nano/setup.sh [VENV_DIR]                 CPU provider only (PyPI)
#   ORT_GPU_INDEX=https://pypi.jetson-ai-lab.io/jp6/cu126 \
#   bash devices/jetson-orin-nano/setup.sh [VENV_DIR]                 + CUDA / TensorRT providers
#
# Why the GPU build needs an extra step: PyPI's onnxruntime wheel for aarch64 has the CPU provider
# only, and PyPI's onnxruntime-gpu is x86-64 only. Wheels with the CUDA and TensorRT providers built
# against JetPack's CUDA / cuDNN / TensorRT come from NVIDIA's Jetson AI Lab pip index (one index per
# JetPack + CUDA release: jp6/cu126 for JetPack 6.x with CUDA 12.6 — check yours with
# `cat /etc/nv_tegra_release` and `nvcc --version`) or, for older releases, the wheels listed on
# elinux.org/Jetson_Zoo. Set ORT_GPU_WHEEL=/path/to/onnxruntime_gpu-*.whl to install a wheel file.
# onnxruntime and onnxruntime-gpu install the same `onnxruntime` module: never keep both.
set -euo pipefail
# What to install, no checkout needed: an edgekd wheel (made on the workstation with `python -m build`,
# copied over) as EDGEKD_WHEEL=/path/to/edgekd-*.whl or lying in the current folder; else edgekd from the index.
WHEEL="${EDGEKD_WHEEL:-$(ls -t ./edgekd-*.whl 2>/dev/null | head -1 || true)}"
[ -z "$WHEEL" ] || [ -f "$WHEEL" ] || { echo "error: wheel not found: $WHEEL" >&2; exit 1; }
BASE="${WHEEL:-edgekd}"        # the wheel file, or the package name
VENV="${1:-$HOME/edgekd-venv}"

[ "$(uname -m)" = "aarch64" ] || { echo "error: run this on the Jetson (aarch64), not $(uname -m)" >&2; exit 1; }
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    echo "error: edgekd needs Python >= 3.10 (JetPack 6 ships 3.10; found $(python3 --version 2>&1))" >&2; exit 1; }

python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip
"$VENV/bin/python" -m pip install "$BASE[device]"

if [ -n "${ORT_GPU_WHEEL:-}" ] || [ -n "${ORT_GPU_INDEX:-}" ]; then
    "$VENV/bin/python" -m pip uninstall -y onnxruntime
    if [ -n "${ORT_GPU_WHEEL:-}" ]; then
        "$VENV/bin/python" -m pip install "$ORT_GPU_WHEEL"
    else
        "$VENV/bin/python" -m pip install --index-url "$ORT_GPU_INDEX" onnxruntime-gpu
    fi
fi

"$VENV/bin/python" - <<'PY'
import onnxruntime, ai_edge_litert
providers = onnxruntime.get_available_providers()
print("onnxruntime", onnxruntime.__version__, providers)
print("ai-edge-litert", ai_edge_litert.__version__)
if "CUDAExecutionProvider" not in providers:
    print("note: CPU provider only; see the top of this script for the GPU wheel")
PY

cat <<TXT

Installed. For numbers you can trust, fix the power mode and clocks first (until reboot):
  sudo nvpmodel -q            # show the power mode; sudo nvpmodel -m 0 for the maximum
  sudo jetson_clocks          # pin CPU/GPU/EMC clocks at their maximum
The first TensorRT run builds an engine (minutes); it is cached in ~/.cache/edgekd/tensorrt and
edgekd bench reports that time as session creation / cold call, apart from the steady latency.
Then:
  source $VENV/bin/activate
  edgekd bench export/<model>/ --device jetson-orin-nano --json bench.json --plot bench.png
TXT
