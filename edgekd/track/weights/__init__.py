"""The DFE encoder edgekd ships, so that `edgekd track` and `edgekd heartrate` use DFE from any folder.

``dfe-encoder/`` holds the exported encoder (ONNX and TFLite, fp32 and INT8) and its card, made by
``edgekd track export`` (the card names the command and records the INT8 tracking gate). The wheel
carries the ONNX/TFLite files and the card; ``model.pt`` (for PyTorch users and the tests) stays in
the source tree only, since the device side has no torch.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED_ENCODER_DIR = Path(__file__).resolve().parent / "dfe-encoder"
