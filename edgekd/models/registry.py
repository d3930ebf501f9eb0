"""A small model registry in the spirit of timm: ``create_model(name, **kw)``.

Each architecture lives in its own file and registers a builder with
``@register_model("name")``. Builders return an ``nn.Module``.
"""

from __future__ import annotations

from typing import Callable

from edgekd.errors import EdgekdError

_REGISTRY: dict[str, Callable] = {}


def register_model(name: str):
    def deco(fn: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn

    return deco


def list_models() -> list[str]:
    _import_all()
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs):
    _import_all()
    if name not in _REGISTRY:
        raise EdgekdError(f"unknown model {name!r}", f"choose one of: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**kwargs)


def _import_all() -> None:
    # Importing the architecture files runs their @register_model decorators.
    from edgekd.models import dfe_autoencoder, mobilenetv2, student  # noqa: F401
