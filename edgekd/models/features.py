"""Intermediate features by forward hooks on module paths (torchdistill style).

Attention transfer compares (student module, teacher module) pairs. A pair is declared
by path (``["features.13", "layer3"]``) or chosen automatically:

1. if the student declares ``feature_taps()`` and the teacher has modules of the same
   names (the paper's truncated student of its own teacher), those names are paired;
2. otherwise each model's taps (declared, or discovered: every module that runs once per
   forward and returns a 4-D map, keeping the last one at each resolution) are paired
   by spatial resolution: each student resolution with the teacher's equal or nearest one
   within a factor of 4/3 (16×16 with 15×15, 4×4 with 3×3: airbench's unpadded stem), the larger map
   average-pooled to the smaller for the loss. Farther apart is a mismatch, and an error.

Nothing relies on attribute conventions such as ``model.features``.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn

from edgekd.errors import EdgekdError


MAX_RESOLUTION_RATIO = 4 / 3 + 1e-9  # 4×4 with 3×3 (airbench), not 4×4 with 2×2


def resolutions_match(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Equal, or within 4/3 in both directions (then the larger map is pooled to the smaller)."""
    return all(max(x, y) / min(x, y) <= MAX_RESOLUTION_RATIO for x, y in zip(a, b))


def _modules(model: nn.Module) -> dict[str, nn.Module]:
    return dict(model.named_modules())


def check_paths(model: nn.Module, paths, role: str) -> None:
    mods = _modules(model)
    missing = [p for p in paths if p not in mods]
    if missing:
        sample = ", ".join(n for n in list(mods)[1:13] if n)
        raise EdgekdError(f"the {role} has no module {', '.join(map(repr, missing))}",
                          f"module paths look like: {sample} …")


class FeatureTaps:
    """Record the outputs of named submodules during each forward: ``with taps: model(x); taps.outputs``."""

    def __init__(self, model: nn.Module, paths: list[str], role: str = "model"):
        self.paths = list(paths)
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles = []
        if not self.paths:
            return
        if isinstance(model, torch.jit.ScriptModule):
            raise EdgekdError(f"the {role} is a TorchScript archive: its submodules cannot be hooked for attention transfer",
                              "load it from its Python architecture and weights, or drop 'at' from the method")
        check_paths(model, self.paths, role)
        mods = _modules(model)
        for p in self.paths:
            self._handles.append(mods[p].register_forward_hook(self._hook(p)))

    def _hook(self, path: str):
        def record(_module, _inp, out):
            self.outputs[path] = out[0] if isinstance(out, (tuple, list)) else out

        return record

    def take(self) -> list[torch.Tensor]:
        """The recorded outputs in path order; clears them for the next forward."""
        missing = [p for p in self.paths if p not in self.outputs]
        if missing:
            raise EdgekdError(f"module(s) {', '.join(missing)} did not run in the forward pass",
                              "choose modules on the path from input to logits")
        out = [self.outputs[p] for p in self.paths]
        self.outputs = {}
        return out

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


@torch.no_grad()
def _trace_maps(model: nn.Module, input_shape) -> list[tuple[str, tuple[int, int]]]:
    """(path, (H, W)) of every module that runs once and returns a 4-D tensor, in execution order."""
    calls: dict[str, int] = {}
    order: list[tuple[str, tuple[int, int], int]] = []
    handles = []

    def hook(name):
        def fn(_m, _i, out):
            calls[name] = calls.get(name, 0) + 1
            t = out[0] if isinstance(out, (tuple, list)) else out
            if isinstance(t, torch.Tensor) and t.dim() == 4:
                order.append((name, tuple(t.shape[-2:]), id(t)))

        return fn

    for name, m in model.named_modules():
        if name:
            handles.append(m.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters(), None)
        model(torch.zeros(1, *input_shape[-3:], device=p.device if p is not None else "cpu"))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return [(n, hw) for n, hw, _ in order if calls[n] == 1]


def discover_taps(model: nn.Module, input_shape) -> list[tuple[str, tuple[int, int]]]:
    """Declared ``feature_taps()`` or, if none, the last module at each resolution (≥ 2×2), in order."""
    traced = _trace_maps(model, input_shape)
    declared = model.feature_taps() if hasattr(model, "feature_taps") else None
    if declared:
        hw = {n: s for n, s in traced}
        return [(n, hw[n]) for n in declared if n in hw]
    last: dict[tuple[int, int], str] = {}
    for name, hw in traced:
        if hw[0] >= 2 and hw[1] >= 2:
            last.pop(hw, None)  # re-insert so that dict order is the order each resolution ends
            last[hw] = name
    return [(n, hw) for hw, n in last.items()]


def auto_pairs(student: nn.Module, teacher: nn.Module, input_shape) -> list[tuple[str, str]]:
    """Attention-transfer pairs chosen as the module docstring says; an error if none match."""
    if isinstance(teacher, torch.jit.ScriptModule) or isinstance(student, torch.jit.ScriptModule):
        raise EdgekdError("attention transfer needs modules that can be hooked; a TorchScript archive cannot",
                          "give the model as architecture + weights, or drop 'at' from the method")
    t_mods = _modules(teacher)
    s_declared = student.feature_taps() if hasattr(student, "feature_taps") else None
    if s_declared and all(n in t_mods for n in s_declared):
        s_hw = dict(_trace_maps(student, input_shape))
        t_hw = dict(_trace_maps(teacher, input_shape))
        same = [(n, n) for n in s_declared if n in s_hw and n in t_hw and s_hw[n] == t_hw[n]]
        if same:
            return same
    s_taps, t_taps = discover_taps(student, input_shape), discover_taps(teacher, input_shape)
    t_by_hw: dict[tuple[int, int], str] = {}
    for name, hw in t_taps:
        t_by_hw[hw] = name  # the last teacher tap at that resolution
    s_by_hw: dict[tuple[int, int], str] = {}
    for name, hw in s_taps:
        s_by_hw[hw] = name
    pairs, used = [], set()
    for hw, s in s_by_hw.items():
        near = [(abs(math.log(hw[0] / t[0])) + abs(math.log(hw[1] / t[1])), t) for t in t_by_hw if t not in used
                and resolutions_match(hw, t)]
        if near:
            t = min(near)[1]
            used.add(t)
            pairs.append((s, t_by_hw[t]))
    if not pairs:
        raise EdgekdError(
            "attention transfer: the student and the teacher share no feature-map resolution "
            f"(student {sorted(s_by_hw)}, teacher {sorted(t_by_hw)})",
            "declare pairs with at_pairs = [[\"student.path\", \"teacher.path\"], ...] or drop 'at' from the method")
    return pairs


def check_pairs(student: nn.Module, teacher: nn.Module, pairs, input_shape) -> list[tuple[str, str]]:
    """Validate declared pairs: both paths exist and give maps of the same spatial size."""
    try:
        pairs = [(str(s), str(t)) for s, t in pairs]
    except (TypeError, ValueError):
        raise EdgekdError(f"at_pairs must be a list of [student_path, teacher_path] pairs, got {pairs!r}") from None
    if not pairs:
        raise EdgekdError("at_pairs is empty", "declare at least one pair, or use at_pairs = \"auto\"")
    check_paths(student, [s for s, _ in pairs], "student")
    check_paths(teacher, [t for _, t in pairs], "teacher")
    s_hw, t_hw = dict(_trace_maps(student, input_shape)), dict(_trace_maps(teacher, input_shape))
    for s, t in pairs:
        if s not in s_hw or t not in t_hw:
            raise EdgekdError(f"attention pair ({s}, {t}): one of them does not return a single 4-D feature map",
                              "pair modules that output (N, C, H, W) once per forward")
        if not resolutions_match(s_hw[s], t_hw[t]):
            raise EdgekdError(f"attention pair ({s}, {t}) has resolutions {s_hw[s]} vs {t_hw[t]}, more than 4/3 apart",
                              "pair modules of (nearly) the same spatial size (at_pairs = \"auto\" finds them)")
    return pairs


@contextmanager
def tapped(model: nn.Module, paths: list[str], role: str = "model"):
    taps = FeatureTaps(model, paths, role)
    try:
        yield taps
    finally:
        taps.remove()
