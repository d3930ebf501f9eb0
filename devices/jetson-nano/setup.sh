#!/usr/bin/env bash
# Install what `edgekd bench` needs on a Jetson Nano (JetPack 4.6, Ubuntu 18.04) — no PyTorch.
#   PYTHON=python3.10 bash devices/jetson-nano/setup.sh [VENV_DIR]
#
# Not verified on hardware. The catch on this board: JetPack 4 ships Python 3.6 with CUDA 10.2 and
# TensorRT 8.2, edgekd needs Python >= 3.10, and NVIDIA publishes onnxruntime-gpu wheels for
# JetPack 4 only for Python 3.6/3.8 (elinux.org/Jetson_Zoo). So:
#   - install a Python >= 3.10 (e.g. built from source, or Miniforge's aarch64 installer) and pass it
#     as PYTHON=...; you get PyPI's CPU-only onnxruntime and ai-edge-litert (if ai-edge-litert's
#     wheel needs a newer glibc than Ubuntu 18.04's 2.27, pip says so: then use tflite-runtime,
#     which edgekd bench picks up as a fallback);
#   - for the CUDA / TensorRT providers, build ONNX Runtime from source for that Python with
#     --use_cuda --use_tensorrt (JetPack's CUDA 10.2 / TensorRT 8.2 cap the ONNX Runtime version),
#     then: ORT_GPU_WHEEL=/path/to/onnxruntime_gpu-*.whl PYTHON=python3.10 bash devices/jetson-nano/setup.sh
# onnxruntime and onnxruntime-gpu install the same `onnxruntime` module: never keep both.
set -euo pipefail
# What to install, no checkout needed: an edgekd wheel (made on the workstation with `python -m build`,
# copied over) as EDGEKD_WHEEL=/path/to/edgekd-*.whl or lying in the current folder; else edgekd from the index.
WHEEL="${EDGEKD_WHEEL:-$(ls -t ./edgekd-*.whl 2>/dev/null | head -1 || true)}"
[ -z "$WHEEL" ] || [ -f "$WHEEL" ] || { echo "error: wheel not found: $WHEEL" >&2; exit 1; }
BASE="${WHEEL:-edgekd}"        # the wheel file, or the package name
VENV="${1:-$HOME/edgekd-venv}"
PYTHON="${PYTHON:-python3}"

[ "$(uname -m)" = "aarch64" ] || { echo "error: run this on the Jetson (aarch64), not $(uname -m)" >&2; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    echo "error: edgekd needs Python >= 3.10; $PYTHON is $("$PYTHON" --version 2>&1) (JetPack 4 ships 3.6)." >&2
    echo "       install a newer Python and run: PYTHON=/path/to/python3.10 bash $0" >&2
    exit 1; }

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip
"$VENV/bin/python" -m pip install "$BASE[device]" || {
    echo "note: the full device extra did not install; trying onnxruntime + tflite-runtime instead" >&2
    "$VENV/bin/python" -m pip install "$BASE" onnxruntime "opencv-python-headless>=4.10,<5" psutil tflite-runtime; }

if [ -n "${ORT_GPU_WHEEL:-}" ]; then
    "$VENV/bin/python" -m pip uninstall -y onnxruntime
    "$VENV/bin/python" -m pip install "$ORT_GPU_WHEEL"
fi

"$VENV/bin/python" -c 'import onnxruntime as o; print("onnxruntime", o.__version__, o.get_available_providers())'

cat <<TXT

Installed. Before benchmarking: sudo nvpmodel -m 0 (10 W mode) and sudo jetson_clocks.
  source $VENV/bin/activate
  edgekd bench export/<model>/ --device jetson-nano --json bench.json
TXT
