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


def machine_record() -> dict:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "bits": struct.calcsize("P") * 8,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def kernels_here() -> dict:
    """Which CPU kernels a runtime measurement used: the instruction set and the CPU (INT8 rounding differs by both)."""
    return {"arch": platform.machine(), "cpu": cpu_model()}
