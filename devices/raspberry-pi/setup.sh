#!/usr/bin/env bash
# Install what `edgekd bench` and the device apps need on a Raspberry Pi 4 or 5 — no PyTorch.
#   bash devices/raspberry-pi/setup.sh {4|5} [VENV_DIR]     (default: ~/edgekd-venv)
# devices/raspberry-pi-4/setup.sh and devices/raspberry-pi-5/setup.sh call this with their model.
# Needs the 64-bit Raspberry Pi OS (Bookworm or later, Python >= 3.10): ONNX Runtime and
# ai-edge-litert publish aarch64 wheels on PyPI, none for the 32-bit (armv7l) OS.
set -euo pipefail
# What to install, no checkout needed: an edgekd wheel (made on the workstation with `python -m build`,
# copied over) as EDGEKD_WHEEL=/path/to/edgekd-*.whl or lying in the current folder; else edgekd from the index.
WHEEL="${EDGEKD_WHEEL:-$(ls -t ./edgekd-*.whl 2>/dev/null | head -1 || true)}"
[ -z "$WHEEL" ] || [ -f "$WHEEL" ] || { echo "error: wheel not found: $WHEEL" >&2; exit 1; }
BASE="${WHEEL:-edgekd}"        # the wheel file, or the package name
PI="${1:?usage: setup.sh {4|5} [VENV_DIR]}"
VENV="${2:-$HOME/edgekd-venv}"
case "$PI" in
    4) POWER="5.1 V / 3 A USB-C for the Pi 4" ;;
    5) POWER="5 V / 5 A USB-C for the Pi 5" ;;
    *) echo "error: Raspberry Pi model must be 4 or 5, got '$PI'" >&2; exit 2 ;;
esac

arch="$(uname -m)"
if [ "$arch" != "aarch64" ]; then
    echo "error: this OS is $arch; install the 64-bit Raspberry Pi OS (no ONNX Runtime / LiteRT wheels for 32-bit ARM)" >&2
    exit 1
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    echo "error: edgekd needs Python >= 3.10 (found $(python3 --version 2>&1))" >&2; exit 1; }

# Bookworm's system Python is "externally managed" (PEP 668): install into a virtual environment.
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip
"$VENV/bin/python" -m pip install "$BASE[device]"      # numpy, onnxruntime, ai-edge-litert, OpenCV, psutil

"$VENV/bin/python" - <<'PY'
import importlib.util, onnxruntime, ai_edge_litert
print("onnxruntime", onnxruntime.__version__, onnxruntime.get_available_providers())
print("ai-edge-litert", ai_edge_litert.__version__)
print("torch installed:", importlib.util.find_spec("torch") is not None, "(not needed on the device)")
PY

cat <<TXT

Installed. For numbers you can trust:
  - cooling: a heatsink + fan (the Pi soft-throttles at 80 °C; edgekd bench warns when it did)
  - power: the official supply ($POWER); under-voltage throttles too (vcgencmd get_throttled)
  - steady clocks (until reboot):
      echo performance | sudo tee /sys/devices/system/cpu/cpufreq/policy0/scaling_governor
Then:
  source $VENV/bin/activate
  edgekd bench export/<model>/ --device raspberry-pi-$PI --threads 1,4 --json bench.json --plot bench.png
TXT
