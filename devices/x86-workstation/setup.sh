#!/usr/bin/env bash
# Install the device side of edgekd on an x86-64 machine — what a Pi gets, to rank formats before
# going to the device. (For training and export use: pip install -c constraints.txt -e ".[all]".)
#   bash devices/x86-workstation/setup.sh [VENV_DIR]          (default: ~/edgekd-venv)
# With an NVIDIA GPU, add the CUDA provider afterwards (same module name: remove the CPU build first):
#   VENV/bin/pip uninstall -y onnxruntime && VENV/bin/pip install onnxruntime-gpu
# and put "cuda" first in devices/x86-workstation/profile.toml's [onnxruntime] providers.
set -euo pipefail
# What to install, no checkout needed: an edgekd wheel (made on the workstation with `python -m build`,
# copied over) as EDGEKD_WHEEL=/path/to/edgekd-*.whl or lying in the current folder; else edgekd from the index.
WHEEL="${EDGEKD_WHEEL:-$(ls -t ./edgekd-*.whl 2>/dev/null | head -1 || true)}"
[ -z "$WHEEL" ] || [ -f "$WHEEL" ] || { echo "error: wheel not found: $WHEEL" >&2; exit 1; }
BASE="${WHEEL:-edgekd}"        # the wheel file, or the package name
VENV="${1:-$HOME/edgekd-venv}"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    echo "error: edgekd needs Python >= 3.10 (found $(python3 --version 2>&1))" >&2; exit 1; }
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip
"$VENV/bin/python" -m pip install "$BASE[device]"
"$VENV/bin/python" -c 'import onnxruntime as o, ai_edge_litert as l; print("onnxruntime", o.__version__, o.get_available_providers(), "| ai-edge-litert", l.__version__)'
cat <<TXT

Installed. Absolute latencies here say nothing about a Pi; compare formats within one run:
  source $VENV/bin/activate
  edgekd bench export/<model>/ --device x86-workstation --threads 1,2 --json bench.json
TXT
