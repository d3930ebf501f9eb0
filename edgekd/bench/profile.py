"""Device profiles: default threads, runtime and delegate order for ``edgekd bench --device NAME``.

The profiles ship inside the package (``edgekd/bench/profiles/NAME.toml``) so that an
installed ``edgekd`` finds them; ``devices/NAME/profile.toml`` in a checkout holds the
same text (a test keeps the two identical) and is preferred when present, so a user who
edits the file next to the device's setup script sees the edit take effect.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgekd.errors import EdgekdError
from edgekd.utils.config import load_toml

PACKAGED = Path(__file__).resolve().parent / "profiles"
REPO_DEVICES = Path(__file__).resolve().parents[2] / "devices"

# Keys a profile may set; anything else is a typo worth an error, not a silent default.
SCHEMA = {
    "device": {"name", "description"},
    "bench": {"threads", "batch", "warmup", "runs", "min_time_s", "block", "pin_cpus", "formats", "warn_above_c"},
    "onnxruntime": {"providers", "provider_options"},
    "litert": {"runtimes", "delegate"},
}


def list_devices() -> list[str]:
    return sorted(p.stem for p in PACKAGED.glob("*.toml"))


def find_profile(device: str) -> Path:
    for candidate in (REPO_DEVICES / device / "profile.toml", PACKAGED / f"{device}.toml"):
        if candidate.is_file():
            return candidate
    raise EdgekdError(f"unknown device {device!r}", f"choose one of: {', '.join(list_devices())}, or pass --profile FILE")


def load_profile(device_or_path: str | os.PathLike) -> dict:
    """A profile by device name or by path, checked against the schema; ``_path`` records where it came from."""
    text = str(device_or_path)
    path = Path(text) if text.endswith(".toml") or os.sep in text else find_profile(text)
    profile = load_toml(path)
    for section, value in profile.items():
        if section not in SCHEMA or not isinstance(value, dict):
            raise EdgekdError(f"{path}: unknown section [{section}]", f"profiles have: {', '.join(SCHEMA)}")
        unknown = set(value) - SCHEMA[section]
        if unknown:
            raise EdgekdError(
                f"{path}: unknown key(s) {', '.join(sorted(unknown))} in [{section}]",
                f"allowed: {', '.join(sorted(SCHEMA[section]))}",
            )
    profile["_path"] = str(path)
    return profile
