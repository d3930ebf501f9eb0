"""One loader for every model a user can bring: teacher, student and export alike.

An *architecture spec* is a registry name (``student``, ``resnet20``, …), a user entry
point ``package.module:callable`` or ``path/to/file.py:callable`` (importable from the
working directory), or ``timm:<name>`` when timm is installed; keyword arguments go to the
builder, and one it does not take is an error naming those it does.

A *model file* is one of:
- an edgekd model file (``.pt`` / ``.safetensors`` recording its architecture);
- a plain ``state_dict`` in ``.pt`` or ``.safetensors`` (then the architecture is needed);
- a TorchScript archive (``torch.jit.save``);
- a ``torch.export`` program (``.pt2``).

Nothing is ever unpickled: ``.pt`` files are read with ``weights_only=True``, so a pickled
module (``torch.save(model)``) or a malicious pickle is refused with one line.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgekd.errors import EdgekdError
from edgekd.models.registry import check_arguments, get_entry, is_registered
from edgekd.utils.config import parse_kwargs  # noqa: F401 - re-exported

FORMAT = "edgekd-model/1"


@dataclass
class LoadedModel:
    model: nn.Module
    kind: str  # registry | entrypoint | timm | torchscript | exported
    arch: str | None = None
    kwargs: dict = field(default_factory=dict)
    path: str | None = None
    meta: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {"kind": self.kind, "arch": self.arch, "kwargs": self.kwargs, "path": self.path}


# ─────────────────────────────── architectures ───────────────────────────────


def _import_entry_point(spec: str):
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise EdgekdError(f"bad architecture {spec!r}", "give a registry name or package.module:callable")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).expanduser().resolve()
            if not path.is_file():
                raise EdgekdError(f"architecture file not found: {path}")
            mod_spec = importlib.util.spec_from_file_location(f"edgekd_user_{path.stem}", path)
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[mod_spec.name] = module
            mod_spec.loader.exec_module(module)
        else:
            cwd = str(Path.cwd())
            added = cwd not in sys.path
            if added:
                sys.path.insert(0, cwd)
            try:
                module = importlib.import_module(module_name)
            finally:
                if added:
                    sys.path.remove(cwd)
    except EdgekdError:
        raise
    except ImportError as exc:
        raise EdgekdError(f"cannot import {module_name!r} for architecture {spec!r} ({exc})",
                          "run from the folder that holds it, install it, or give path/to/file.py:callable") from None
    except Exception as exc:  # noqa: BLE001 - the user's module raised while importing
        raise EdgekdError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise EdgekdError(f"{module_name} has no callable {attr!r}", f"architecture specs look like {module_name}:MyNet")
    return fn


def build_arch(spec: str, kwargs: dict | None = None) -> LoadedModel:
    """Build an architecture from its spec (see module docstring), untrained."""
    kwargs = dict(kwargs or {})
    if not isinstance(spec, str) or not spec.strip():
        raise EdgekdError(f"bad architecture {spec!r}", "give a registry name or package.module:callable")
    if spec.startswith("timm:"):
        try:
            timm = importlib.import_module("timm")
        except ImportError:
            raise EdgekdError("timm is not installed", "pip install timm (and torchvision) to use timm: models") from None
        try:
            model = timm.create_model(spec[5:], **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise EdgekdError(f"timm cannot build {spec[5:]!r}: {exc}") from None
        return LoadedModel(model, "timm", spec, kwargs)
    if ":" not in spec:
        from edgekd.models.registry import create_model

        if not is_registered(spec):
            get_entry(spec)  # raises the error listing the registered names
        return LoadedModel(create_model(spec, **kwargs), "registry", spec, kwargs)
    fn = _import_entry_point(spec)
    check_arguments(spec, fn, kwargs)
    try:
        model = fn(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the user's builder raised
        raise EdgekdError(f"{spec}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) failed: "
                          f"{type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise EdgekdError(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module")
    return LoadedModel(model, "entrypoint", spec, kwargs)


def accepts(spec: str, name: str) -> bool:
    """Whether the builder of ``spec`` takes keyword ``name`` (e.g. num_classes)."""
    import inspect

    try:
        fn = get_entry(spec).builder if ":" not in spec else _import_entry_point(spec)
        params = inspect.signature(fn).parameters
    except (EdgekdError, TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


# ─────────────────────────────── model files ───────────────────────────────


def file_kind(path: Path) -> str:
    """edgekd | state_dict | safetensors | torchscript | exported (by content, not by name)."""
    if path.suffix == ".safetensors":
        return "safetensors"
    if zipfile.is_zipfile(path):
        try:
            names = zipfile.ZipFile(path).namelist()
        except (zipfile.BadZipFile, OSError):
            raise EdgekdError(f"{path} is a damaged archive", "re-save or re-download it") from None
        if any(n.endswith("/archive_format") for n in names) or any("/models/" in n and n.endswith(".json") for n in names):
            return "exported"
        if any("/code/" in n for n in names) and any(n.endswith("/constants.pkl") for n in names):
            return "torchscript"
    return "pickle"


class _AnyBatch(nn.Module):
    """Runs a program exported for one fixed batch size on any batch (in slices of that size)."""

    def __init__(self, inner: nn.Module, batch: int):
        super().__init__()
        self.inner, self.batch = inner, batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for lo in range(0, len(x), self.batch):
            part = x[lo : lo + self.batch]
            n = len(part)
            if n < self.batch:
                part = torch.cat([part, part[-1:].expand(self.batch - n, *part.shape[1:])])
            outs.append(self.inner(part)[:n])
        return torch.cat(outs)


def _load_exported(path: Path) -> nn.Module:
    try:
        program = torch.export.load(str(path))
        module = torch.export.unflatten(program)  # keeps the module tree, so hooks and eval() work
    except Exception as exc:  # noqa: BLE001
        raise EdgekdError(f"{path} is not a readable torch.export program ({type(exc).__name__}: {str(exc)[:120]})",
                          "save it with torch.export.save(torch.export.export(model, args), 'model.pt2')") from None
    spec = program.graph_signature.user_inputs
    sizes = [n.meta.get("val") for n in program.graph.nodes if n.op == "placeholder" and n.name in spec]
    batch = sizes[0].shape[0] if sizes and sizes[0] is not None and hasattr(sizes[0], "shape") else None
    if isinstance(batch, int):
        module = _AnyBatch(module, batch)
    return module


def _load_torchscript(path: Path) -> nn.Module:
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001
        raise EdgekdError(f"{path} is not a readable TorchScript archive ({type(exc).__name__})") from None


def read_weights(path: Path) -> dict:
    """``{"arch", "config", "state_dict", "meta"}`` from an edgekd file or a plain state_dict (.pt/.safetensors)."""
    if not path.is_file():
        raise EdgekdError(f"model file not found: {path}", "check the path")
    if path.suffix == ".safetensors":
        from safetensors import safe_open
        from safetensors.torch import load_file

        try:
            with safe_open(str(path), framework="pt") as f:
                md = f.metadata() or {}
            state = load_file(str(path))
            config, meta = json.loads(md.get("config", "{}")), json.loads(md.get("meta", "{}"))
        except Exception as exc:  # noqa: BLE001 - any parse failure means a bad file
            raise EdgekdError(f"{path} is not a readable safetensors file ({type(exc).__name__})") from None
        return {"format": FORMAT if md.get("arch") else None, "arch": md.get("arch"), "config": config,
                "state_dict": state, "meta": meta}
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        text = str(exc)
        if "Unsupported global" in text or "weights_only" in text.lower():
            raise EdgekdError(
                f"{path.name} holds pickled Python objects (e.g. a whole module saved with torch.save(model)); "
                "edgekd never unpickles code",
                "save model.state_dict() (or use torch.jit.save / torch.export.save) and pass the architecture") from None
        raise EdgekdError(f"{path} is not a PyTorch weights file edgekd can read ({type(exc).__name__})",
                          "pass a state_dict .pt, a .safetensors, a TorchScript archive or a .pt2") from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        if not isinstance(obj.get("state_dict"), dict):
            raise EdgekdError(f"{path} is an edgekd model file without weights", "re-save it")
        if obj.get("sha256") and weights_digest(obj["state_dict"]) != obj["sha256"]:
            raise EdgekdError(f"{path}: the weights do not match the checksum the file records — it is damaged",
                              "re-create it (re-run the stage that wrote it) or restore a good copy")
        return obj
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict) and \
            all(isinstance(v, torch.Tensor) for v in obj["state_dict"].values()):
        obj = obj["state_dict"]  # the common {"state_dict": ..., "epoch": ...} training checkpoint
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"format": None, "arch": None, "config": {}, "state_dict": dict(obj), "meta": {}}
    raise EdgekdError(f"{path} does not contain a model state_dict",
                      "save it with torch.save(model.state_dict()), or as TorchScript / .pt2")


def _classifier_mismatch(model: nn.Module, state: dict) -> str | None:
    own = model.state_dict()
    for k, v in state.items():
        if k in own and own[k].shape != v.shape and own[k].dim() in (1, 2) and k.endswith(("weight", "bias")):
            if own[k].shape[1:] == v.shape[1:]:
                return (f"the weights predict {v.shape[0]} classes ({k}) but the model was built for "
                        f"{own[k].shape[0]}")
    return None


def load_state(model: nn.Module, state: dict, where: str, arch: str | None) -> None:
    """Strict load after the architecture's own key mapping (timm's checkpoint_filter_fn)."""
    filt = getattr(model, "checkpoint_filter_fn", None)
    if callable(filt):
        state = filt(state, model)
    classes = _classifier_mismatch(model, state)
    if classes:
        raise EdgekdError(f"{where}: {classes}", "use weights trained on this data set's classes")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        own = set(model.state_dict())
        missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
        detail = (f"{len(missing)} missing keys (e.g. {missing[:2]}), {len(unexpected)} unexpected "
                  f"(e.g. {unexpected[:2]})") if missing or unexpected else str(exc).splitlines()[-1][:200]
        raise EdgekdError(f"{where} does not fit architecture {arch!r}: {detail}",
                          "pass the architecture (and its arguments) the weights were trained with") from None


def load_model(path: str | Path | None = None, arch: str | None = None, kwargs: dict | None = None,
               num_classes: int | None = None, role: str = "model") -> LoadedModel:
    """A model from a file and/or an architecture spec (see module docstring)."""
    kwargs = dict(kwargs or {})
    if path is None:
        if not arch:
            raise EdgekdError(f"the {role} needs an architecture or a model file")
        if num_classes is not None and "num_classes" not in kwargs and accepts(arch, "num_classes"):
            kwargs["num_classes"] = num_classes
        return build_arch(arch, kwargs)
    path = Path(path).expanduser()
    if not path.is_file():
        raise EdgekdError(f"{role} file not found: {path}", "check the path")
    kind = file_kind(path)
    if kind in ("torchscript", "exported"):
        if arch:
            raise EdgekdError(f"{path.name} is a {kind} file that holds its own architecture", "drop the architecture")
        module = _load_torchscript(path) if kind == "torchscript" else _load_exported(path)
        module.eval()
        return LoadedModel(module, kind, None, {}, str(path))
    obj = read_weights(path)
    file_arch = obj.get("arch")
    spec = arch or file_arch
    if spec is None:
        raise EdgekdError(f"{path.name} is a plain state_dict with no architecture recorded",
                          f"pass the {role}'s architecture: a registry name (e.g. student) or package.module:callable")
    cfg = {**(obj.get("config") or {}), **kwargs} if (arch is None or arch == file_arch) else kwargs
    if num_classes is not None and "num_classes" not in cfg and accepts(spec, "num_classes"):
        cfg["num_classes"] = num_classes
    loaded = build_arch(spec, cfg)
    load_state(loaded.model, obj["state_dict"], str(path), spec)
    loaded.model.eval()
    loaded.path, loaded.meta = str(path), obj.get("meta", {}) or {}
    return loaded


def weights_digest(state: dict) -> str:
    """sha256 over the tensors by name (what an edgekd model file records, and checks when read)."""
    import hashlib

    h = hashlib.sha256()
    for k in sorted(state):
        v = state[k]
        if isinstance(v, torch.Tensor):
            h.update(k.encode())
            h.update(str(v.dtype).encode())
            h.update(v.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes() if v.numel() else b"")
    return h.hexdigest()


def builder_arguments(built) -> dict:
    """What the file records to rebuild the model: the arguments its builder was called with. (A model's own
    ``config`` describes its class, whose arguments a named builder such as ``mobilenetv2_x0_5`` may fix and refuse.)"""
    if built.kind in ("registry", "entrypoint") and built.kwargs:
        return dict(built.kwargs)
    return dict(getattr(built.model, "config", None) or built.kwargs)


def save_model(path: str | Path, model: nn.Module, arch: str, config: dict | None = None, meta: dict | None = None):
    """An edgekd model file: plain tensors + the architecture spec and its arguments (read back with weights_only)."""
    from edgekd.utils.io import atomic_torch_save

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "arch": arch,
        "config": config if config is not None else dict(getattr(model, "config", {}) or {}),
        "state_dict": state,
        "meta": meta or {},
        "sha256": weights_digest(state),
    }
    return atomic_torch_save(path, payload)
