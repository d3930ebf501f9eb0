"""Save and load models as plain tensors + a JSON-able config (never arbitrary pickles).

A model file holds ``{"format": "edgekd-model/1", "arch": name, "config": {...},
"state_dict": {...}, "meta": {...}}`` and is read with ``torch.load(weights_only=True)``,
which refuses anything but tensors and primitive containers. ``.safetensors`` files are
accepted too (metadata stores arch and config as JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgekd.errors import EdgekdError
from edgekd.models.registry import create_model
from edgekd.utils.io import atomic_write

FORMAT = "edgekd-model/1"


def model_config(model: nn.Module) -> dict[str, Any]:
    return dict(getattr(model, "config", {}) or {})


def save_model(path: str | Path, model: nn.Module, arch: str, config: dict | None = None, meta: dict | None = None):
    payload = {
        "format": FORMAT,
        "arch": arch,
        "config": config if config is not None else model_config(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta or {},
    }
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def _read(path: Path) -> dict:
    if not path.is_file():
        raise EdgekdError(f"model file not found: {path}", "check the path")
    if path.suffix == ".safetensors":
        from safetensors import safe_open
        from safetensors.torch import load_file

        try:
            with safe_open(str(path), framework="pt") as f:
                md = f.metadata() or {}
            state = load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - any parse failure means a bad file
            raise EdgekdError(f"{path} is not a readable safetensors file ({exc})") from None
        return {
            "format": FORMAT,
            "arch": md.get("arch"),
            "config": json.loads(md.get("config", "{}")),
            "state_dict": state,
            "meta": json.loads(md.get("meta", "{}")),
        }
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise EdgekdError(
            f"{path} is not a PyTorch weights file edgekd can read safely ({type(exc).__name__})",
            "edgekd only loads tensors (weights_only=True); re-save the model's state_dict",
        ) from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return obj
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"format": None, "arch": None, "config": {}, "state_dict": obj, "meta": {}}
    raise EdgekdError(f"{path} does not contain a model state_dict", "save it with edgekd or torch.save(model.state_dict())")


def load_model(
    path: str | Path, arch: str | None = None, config: dict | None = None
) -> tuple[nn.Module, dict]:
    """Build the architecture named in the file (or ``arch``) and load its weights strictly."""
    path = Path(path)
    obj = _read(path)
    arch = obj.get("arch") or arch
    if arch is None:
        raise EdgekdError(f"{path} is a bare state_dict with no architecture recorded", "pass the architecture (e.g. --teacher-arch mobilenetv2_cifar)")
    cfg = {**(obj.get("config") or {}), **(config or {})}
    model = create_model(arch, **cfg)
    state = obj["state_dict"]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise EdgekdError(
            f"{path} does not fit architecture {arch!r}: " + " ".join(s.strip() for s in first)[:300],
            "pass the architecture the weights were trained with",
        ) from None
    model.eval()
    return model, {"arch": arch, "config": cfg, "meta": obj.get("meta", {})}
