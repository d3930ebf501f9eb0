"""Save and load edgekd model files: plain tensors + a JSON-able architecture spec (never arbitrary pickles).

A model file holds ``{"format": "edgekd-model/1", "arch": spec, "config": {...},
"state_dict": {...}, "meta": {...}}`` and is read with ``torch.load(weights_only=True)``.
Every other kind of model file (state_dicts, safetensors, TorchScript, ``.pt2``) is read
by :mod:`edgekd.models.sources`; this module is the short form for edgekd's own files.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from edgekd.models.sources import FORMAT, load_model as _load, save_model

__all__ = ["FORMAT", "load_model", "save_model"]


def load_model(path: str | Path, arch: str | None = None, config: dict | None = None) -> tuple[nn.Module, dict]:
    """Build the architecture named in the file (or ``arch``) and load its weights strictly."""
    loaded = _load(path, arch=arch, kwargs=config)
    return loaded.model, {"arch": loaded.arch, "config": loaded.kwargs, "meta": loaded.meta, "kind": loaded.kind}
