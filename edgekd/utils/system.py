"""What machine a figure was measured on. Pure stdlib (+ optional psutil)."""

from __future__ import annotations

import os
import platform
import struct
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key = line.split(":")[0].strip().lower()
            # x86 has "model name"; Arm boards put the SoC in "Hardware" or "Model". The bare
            # x86 "model" line is a number, so it must not win over "model name".
            if key in ("model name", "hardware"):
                return line.split(":", 1)[1].strip()
            if key == "model" and not line.split(":", 1)[1].strip().isdigit():
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Instruction-set extensions that change which kernels PyTorch, ONNX Runtime and LiteRT run (bf16 autocast, INT8 dot
# products), so two machines with the same model name ("AMD EPYC") can be told apart in a record
KERNEL_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8", "asimddp", "i8mm",
                "bf16", "sve")


def cpu_signature() -> dict:
    """The CPU's x86 family/model/stepping (Arm: its part number) and kernel-relevant flags from /proc/cpuinfo ({}
    where it is not readable)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if ":" in line:
                key, value = (t.strip() for t in line.split(":", 1))
                fields.setdefault(key.lower(), value)
    except OSError:
        return {}
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    ident = {k.replace("cpu ", ""): fields[k] for k in ("cpu family", "model", "stepping", "cpu part") if
             k in fields and fields[k].removeprefix("0x").isalnum()}
    return {**ident, "kernel_flags": [f for f in KERNEL_FLAGS if f in flags]}


def machine_record() -> dict:
    return {
        "cpu": cpu_model(),
        "cpu_signature": cpu_signature(),
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "bits": struct.calcsize("P") * 8,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def kernels_here() -> dict:
    """Which CPU kernels a runtime measurement used: the instruction set and the CPU (INT8 rounding differs by both)."""
    return {"arch": platform.machine(), "cpu": cpu_model()}
