"""What the device was doing: the machine record plus governor, clocks, temperature and throttling.

Everything here reads /sys or runs ``vcgencmd`` when present and returns None
otherwise, so the same code runs on a Pi, a Jetson and a workstation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from edgekd.bench.runtimes import cpu_affinity, runtime_versions
from edgekd.utils.system import machine_record

CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")
THERMAL = Path("/sys/class/thermal")

# Bits of `vcgencmd get_throttled` (Raspberry Pi firmware documentation).
THROTTLE_BITS = {
    0: "under-voltage now",
    1: "ARM frequency capped now",
    2: "throttled now",
    3: "soft temperature limit now",
    16: "under-voltage has occurred",
    17: "ARM frequency capping has occurred",
    18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _vcgencmd(*args: str) -> str | None:
    exe = shutil.which("vcgencmd")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def governor() -> str | None:
    return _read(CPUFREQ / "scaling_governor")


def cpu_mhz() -> float | None:
    khz = _read(CPUFREQ / "scaling_cur_freq")
    return int(khz) / 1000 if khz and khz.isdigit() else None


def temperatures() -> dict[str, float]:
    """°C per thermal zone (named by its type), plus the Pi firmware's reading."""
    temps: dict[str, float] = {}
    for zone in sorted(THERMAL.glob("thermal_zone*")):
        raw, kind = _read(zone / "temp"), _read(zone / "type") or zone.name
        if raw and raw.lstrip("-").isdigit():
            temps[f"{kind}" if kind not in temps else f"{kind}:{zone.name}"] = int(raw) / 1000
    vc = _vcgencmd("measure_temp")  # "temp=48.3'C"
    if vc and "=" in vc:
        try:
            temps["vcgencmd"] = float(vc.split("=", 1)[1].split("'")[0])
        except ValueError:
            pass
    return temps


def throttled() -> int | None:
    out = _vcgencmd("get_throttled")  # "throttled=0x50000"
    if out and "=" in out:
        try:
            return int(out.split("=", 1)[1], 16)
        except ValueError:
            return None
    return None


def decode_throttled(flags: int | None) -> list[str]:
    if not flags:
        return []
    return [text for bit, text in THROTTLE_BITS.items() if flags & (1 << bit)]


def snapshot() -> dict:
    """The moving parts, read before and after a run."""
    flags = throttled()
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "governor": governor(),
        "cpu_mhz": cpu_mhz(),
        "temperature_c": temperatures(),
        "throttled": None if flags is None else hex(flags),
        "throttled_meaning": decode_throttled(flags),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def cpu_description() -> str | None:
    """``model name`` from /proc/cpuinfo (x86); ARM kernels have none, so the CPU part is used there."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    fields: dict[str, str] = {}
    for line in info:
        if ":" in line:
            key, value = (t.strip() for t in line.split(":", 1))
            fields.setdefault(key.lower(), value)
    if "model name" in fields:
        return fields["model name"]
    part = fields.get("cpu part")
    arm_parts = {"0xd03": "Cortex-A53", "0xd07": "Cortex-A57", "0xd08": "Cortex-A72", "0xd0b": "Cortex-A76",
                 "0xd42": "Cortex-A78AE", "0xd41": "Cortex-A78", "0xd05": "Cortex-A55"}  # fmt: skip
    return arm_parts.get(part or "", f"ARM CPU part {part}") if part else None


def board_model() -> str | None:
    """The board, e.g. 'Raspberry Pi 5 Model B Rev 1.0' or 'NVIDIA Jetson Orin Nano Developer Kit'."""
    text = _read(Path("/proc/device-tree/model"))
    return text.rstrip("\x00") if text else None


def system_record() -> dict:
    record = machine_record()
    record["cpu"] = cpu_description() or record["cpu"]
    return {**record, "board": board_model(), "cpu_affinity": cpu_affinity(), "runtimes": runtime_versions()}


def run_warnings(before: dict, after: dict, cores: int | None, warn_above_c: float | None = None) -> list[str]:
    """Reasons not to trust a run: throttling, a hot device, a busy machine, a ramping governor."""
    warnings = []
    fb = int(before["throttled"], 16) if before.get("throttled") else 0
    fa = int(after["throttled"], 16) if after.get("throttled") else 0
    now = decode_throttled(fa & 0xF)
    new = decode_throttled((fa & ~fb) & 0xF0000)
    if now or new:
        warnings.append(
            "the device throttled during the run (" + "; ".join(now + new) + "): latencies are not representative — "
            "cool it, use a proper power supply, and run again"
        )
    if warn_above_c is not None:
        hot = {k: v for k, v in (after.get("temperature_c") or {}).items() if v >= warn_above_c}
        if hot:
            warnings.append(f"temperature reached {max(hot.values()):.1f} °C (≥ {warn_above_c} °C): throttling likely")
    load = before.get("loadavg")
    if load and cores and load[0] > 0.5 * cores:
        warnings.append(
            f"the machine was busy before the run (1-min load {load[0]:.1f} on {cores} cores): other processes "
            "share the CPU, so compare models within this run only"
        )
    gov = before.get("governor")
    if gov and gov not in ("performance",):
        warnings.append(f"CPU governor is {gov!r}: clocks ramp with load; 'performance' gives steadier numbers")
    return warnings
