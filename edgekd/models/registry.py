"""A small model registry in the spirit of timm: ``create_model(name, **kw)``.

Each architecture lives in its own file and registers a builder with
``@register_model("name", default_cfg={...})``. The default config says what the model
expects (``input_size``, ``mean``/``std``, ``num_classes``, the ``classifier`` module and
the ``family``), so the pipeline never guesses. Builders take explicit keyword
arguments; an argument a builder does not know is an error naming the ones it does.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from edgekd.errors import EdgekdError

_REGISTRY: dict[str, "ModelEntry"] = {}

# Defaults every entry gets unless its own default_cfg says otherwise.
_BASE_CFG = {"input_size": (3, 32, 32), "mean": None, "std": None, "num_classes": 10, "classifier": "classifier",
             "family": None, "description": "",
             # how the fast (airbench) recipe must change to train this network: "lr_scale" multiplies its learning
             # rate, "norm_bias_lr_scale" replaces its 64× for BatchNorm shifts (airbench's own nets: none)
             "fast_recipe": {}}

# airbench's rates (lr 1.5 at batch 1024, BatchNorm shifts 64× faster) are tuned for its own nets: ResNet-20 stayed at
# chance with them. Families with ordinary BatchNorm take ⅛ of the rate (chosen on validation for ResNet-20,
# benchmarks/students_converged.md; the other families were not measured) and shifts at the base rate.
STANDARD_NET_FAST_RECIPE = {"lr_scale": 0.125, "norm_bias_lr_scale": 1.0}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable
    default_cfg: dict = field(default_factory=dict)

    def arguments(self) -> list[str]:
        return [p.name for p in inspect.signature(self.builder).parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def register_model(name: str, default_cfg: dict | None = None):
    def deco(fn: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        if any(p.kind == p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values()):
            raise ValueError(f"builder {name!r} takes **kwargs: unknown arguments would be swallowed silently")
        cfg = {**_BASE_CFG, **(default_cfg or {})}
        if not cfg["description"]:
            cfg["description"] = (inspect.getdoc(fn) or "").split("\n")[0]
        _REGISTRY[name] = ModelEntry(name, fn, cfg)
        return fn

    return deco


def list_models(family: str | None = None) -> list[str]:
    _import_all()
    return sorted(n for n, e in _REGISTRY.items() if family is None or e.default_cfg.get("family") == family)


def is_registered(name: str) -> bool:
    _import_all()
    return name in _REGISTRY


def get_entry(name: str) -> ModelEntry:
    _import_all()
    if name not in _REGISTRY:
        raise EdgekdError(f"unknown model {name!r}",
                          f"choose one of: {', '.join(sorted(_REGISTRY))}, or give package.module:callable")
    return _REGISTRY[name]


def get_default_cfg(name: str) -> dict:
    return dict(get_entry(name).default_cfg)


def check_arguments(name: str, builder: Callable, kwargs: dict[str, Any]) -> None:
    """Refuse keyword arguments the builder does not take, naming those it does."""
    params = inspect.signature(builder).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return  # a user's builder that takes **kwargs decides for itself
    known = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise EdgekdError(f"{name} does not take argument(s) {', '.join(unknown)}",
                          f"it takes: {', '.join(known) or 'no arguments'}")


def create_model(name: str, **kwargs):
    entry = get_entry(name)
    check_arguments(name, entry.builder, kwargs)
    try:
        model = entry.builder(**kwargs)
    except (TypeError, ValueError) as exc:
        raise EdgekdError(f"cannot build {name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}): {exc}",
                          f"valid arguments: {', '.join(entry.arguments())}") from None
    model.default_cfg = entry.default_cfg
    model.arch = name
    return model


def _import_all() -> None:
    # Importing the architecture files runs their @register_model decorators.
    from edgekd.models import (  # noqa: F401
        airbench,
        dfe_autoencoder,
        mobilenetv2,
        resnet_cifar,
        student,
    )
