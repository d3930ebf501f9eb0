"""Model registry and architectures (torch is imported only by the architecture files)."""

from edgekd.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
