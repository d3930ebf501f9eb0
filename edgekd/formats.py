"""The one table of model formats. Export and benchmarking both read it.

Adding a format is adding a row: the exporter is named as ``"module:function"`` and
imported only when that format is exported, so this file (and ``edgekd bench``) never
imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekd.errors import EdgekdError


@dataclass(frozen=True)
class Format:
    name: str  # what users type: --formats onnx,tflite-int8
    filename: str  # file written inside export/<model>/
    runtime: str  # "torch" | "onnxruntime" | "litert"
    int8: bool
    exporter: str | None  # "module:function", None for the reference
    extra: str  # pip extra that runs this format on a device


FORMATS: tuple[Format, ...] = (
    Format("torch", "model.pt", "torch", False, None, "train"),
    Format("onnx", "model.onnx", "onnxruntime", False, "edgekd.convert.onnx:export_onnx", "device"),
    Format("onnx-int8", "model.int8.onnx", "onnxruntime", True, "edgekd.convert.onnx:quantize_onnx_int8", "device"),
    Format("tflite", "model.tflite", "litert", False, "edgekd.convert.tflite:export_tflite", "device"),
    Format("tflite-int8", "model.int8.tflite", "litert", True, "edgekd.convert.tflite:export_tflite_int8", "device"),
)
BY_NAME = {f.name: f for f in FORMATS}
EXPORT_FORMATS = tuple(f.name for f in FORMATS if f.exporter)
# quantisation-aware fine-tuning of the ONNX INT8 file: auto (when post-training agreement falls short) | on | off
QAT_MODES = ("auto", "on", "off")


def get_format(name: str) -> Format:
    if name not in BY_NAME:
        raise EdgekdError(f"unknown format {name!r}", f"choose from: {', '.join(BY_NAME)}")
    return BY_NAME[name]


def parse_formats(spec: str | list[str] | None) -> list[Format]:
    """``"onnx,tflite-int8"`` or ``["onnx", ...]`` or ``"all"``/None → format rows."""
    if spec is None or spec == "all" or spec == ["all"]:
        return [BY_NAME[n] for n in EXPORT_FORMATS]
    names = spec.split(",") if isinstance(spec, str) else [n for s in spec for n in s.split(",")]
    return [get_format(n.strip()) for n in names if n.strip()]


def format_of_file(path: str | Path) -> Format:
    """Guess the format of a model file from its name (``*.int8.*`` means quantised)."""
    p = Path(path)
    name = p.name.lower()
    int8 = ".int8." in name or "int8" in p.stem.lower()
    if name.endswith(".onnx"):
        return BY_NAME["onnx-int8" if int8 else "onnx"]
    if name.endswith(".tflite"):
        return BY_NAME["tflite-int8" if int8 else "tflite"]
    if name.endswith((".pt", ".pth", ".pt2", ".ts", ".safetensors")):
        return BY_NAME["torch"]
    raise EdgekdError(
        f"{p.name}: not a model file edgekd knows (.onnx, .tflite, .pt, .pth, .pt2, .ts, .safetensors)",
        "pass an exported model, e.g. export/<name>/model.int8.onnx",
    )
