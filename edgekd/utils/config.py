"""TOML run configs: a file gives defaults, command-line flags override them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from edgekd.errors import EdgekdError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise EdgekdError(f"config file not found: {path}", "check the path given to --config")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise EdgekdError(f"{path} is not valid TOML: {exc}", "fix the file or pass settings as flags") from None


def to_toml(d: dict[str, Any]) -> str:
    """Minimal TOML writer: scalars and lists at the top, one level of [tables], anything deeper inline."""
    import re

    def key(k: Any) -> str:
        k = str(k)
        return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else val(k)

    def val(v: Any) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f"{key(k)} = {val(x)}" for k, x in v.items()) + "}"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if v is None:
            return '""'
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines, tables = [], []
    for k, v in d.items():
        (tables if isinstance(v, dict) else lines).append((k, v))
    out = [f"{key(k)} = {val(v)}" for k, v in lines]
    for k, t in tables:
        out.append(f"\n[{k}]")
        out += [f"{key(kk)} = {val(vv)}" for kk, vv in t.items()]
    return "\n".join(out) + "\n"


def parse_kwargs(text: str | dict | None, option: str = "--kwargs") -> dict[str, Any]:
    """``"width_mult=0.5,stem_stride=2"`` → ``{"width_mult": 0.5, "stem_stride": 2}`` (values read as TOML/JSON)."""
    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        return dict(text)
    out: dict[str, Any] = {}
    for part in _split_top_level(text):
        if "=" not in part:
            raise EdgekdError(f"{option} takes key=value pairs separated by commas, got {part!r}",
                              "e.g. width_mult=0.5,stem_stride=2")
        k, v = (s.strip() for s in part.split("=", 1))
        out[k] = _value(v)
    return out


def _split_top_level(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[(" :
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def _value(v: str):
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return json.loads(v.replace("(", "[").replace(")", "]"))
    except ValueError:
        return v.strip("'\"")
