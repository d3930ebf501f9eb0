"""Start a student from its teacher: copy the teacher's weights into a narrower network of the same structure.

Structured channel pruning (Li et al., ICLR 2017; Molchanov et al., CVPR 2019) used as an initialisation for
distillation: a student that starts from its teacher's most useful channels converges in a fraction of the
epochs a randomly initialised one needs (benchmarks/students_converged.md).

The network is traced with ``torch.fx`` into *channel spaces*: the channels a convolution or linear layer writes
and every layer that reads them (BatchNorm, activations, pooling, depthwise convolutions), joined across residual
additions, which must keep the same channels on both sides. Each space of the student must be the teacher's
space of the same parameters, at most as wide. A space that the student narrows keeps the channels that
contribute most to the layers reading them: on training images, the root-mean-square of the channel's input to
each reading layer times the norm of that layer's weights on it, summed over the readers. Input and output
spaces (image channels, classes) are never pruned.

Refused, with a clear error: a student whose parameters the teacher lacks or has in another role, a wider
student, and operations whose channel bookkeeping is not known here (concatenation, grouped convolutions other
than depthwise, normalisations over channel groups).
"""

from __future__ import annotations

import operator

import torch
from torch import nn

from edgekd.errors import EdgekdError

# leaf modules that keep their input's channels, whatever their input size
_KEEPS_CHANNELS = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh,
                   nn.LeakyReLU, nn.ELU, nn.Mish, nn.Dropout, nn.Dropout2d, nn.Identity, nn.MaxPool2d, nn.AvgPool2d,
                   nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_ELEMENTWISE = {operator.add, operator.iadd, operator.sub, operator.mul, operator.imul, operator.truediv,
                torch.add, torch.sub, torch.mul, torch.div, "add", "add_", "sub", "mul", "mul_", "div"}
_CONCATS = {torch.cat, torch.concat, torch.stack, "cat"}


class PruneError(EdgekdError):
    pass


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []

    def new(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


class ChannelSpaces:
    """Which channel space each axis of each parameter and buffer lies in (None: not a channel axis).

    ``axes[name]`` is a tuple with one entry per axis of the tensor ``name`` in ``state_dict()``; ``readers`` lists
    (module name, input space) for every layer that mixes channels (dense conv, linear); ``fixed`` holds the spaces
    of the input and the output.
    """

    def __init__(self, axes: dict[str, tuple], readers: list[tuple[str, int]], fixed: set[int], uf: _UnionFind):
        self.axes = {k: tuple(None if s is None else uf.find(s) for s in v) for k, v in axes.items()}
        self.readers = [(m, uf.find(s)) for m, s in readers]
        self.fixed = {uf.find(s) for s in fixed}


def _shape(node) -> torch.Size | None:
    meta = node.meta.get("tensor_meta") if hasattr(node, "meta") else None
    return getattr(meta, "shape", None)


def trace_channels(model: nn.Module, example: torch.Tensor, role: str = "model") -> ChannelSpaces:
    """Trace ``model`` on ``example`` (a small input batch) and return its channel spaces."""
    from torch.fx import GraphModule, Tracer
    from torch.fx.passes.shape_prop import ShapeProp

    class _Tracer(Tracer):  # subclasses of the known layers (airbench's BatchNorm) stay whole
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            known = (nn.Conv1d, nn.Conv2d, nn.Linear, *_BATCHNORMS, *_KEEPS_CHANNELS, nn.Flatten)
            return isinstance(m, known) or super().is_leaf_module(m, qualname)

    try:
        graph_module = GraphModule(model, _Tracer().trace(model))
        was_training = model.training
        graph_module.eval()
        with torch.no_grad():
            ShapeProp(graph_module).propagate(example)
        graph_module.train(was_training)
    except Exception as exc:  # noqa: BLE001 - data-dependent control flow and the like
        raise PruneError(f"cannot trace the {role} with torch.fx ({type(exc).__name__}: {str(exc)[:160]})",
                         "start the student from scratch (student_init = \"random\")") from None
    modules = dict(graph_module.named_modules())
    uf = _UnionFind()
    space: dict = {}
    axes: dict[str, tuple] = {}
    readers: list[tuple[str, int]] = []
    fixed: set[int] = set()

    def unsupported(node, why: str):
        raise PruneError(f"cannot start this {role} from the teacher: {why} at `{node.name}`",
                         "start the student from scratch (student_init = \"random\")")

    def tensor_args(node):
        return [a for a in list(node.args) + list(node.kwargs.values()) if isinstance(a, torch.fx.Node) and a in space]

    def same_as_input(node):
        inputs = tensor_args(node)
        shape, in_shape = _shape(node), _shape(inputs[0]) if inputs else None
        if not inputs or shape is None or in_shape is None or len(shape) < 2 or shape[1] != in_shape[1]:
            unsupported(node, f"an operation ({node.target}) that changes the channel count")
        return space[inputs[0]]

    for node in graph_module.graph.nodes:
        if node.op == "placeholder":
            space[node] = uf.new()
            fixed.add(space[node])
        elif node.op == "output":
            result = node.args[0]
            if isinstance(result, torch.fx.Node) and result in space:
                fixed.add(space[result])
        elif node.op == "get_attr":
            continue  # a tensor attribute: its shape must match between teacher and student (checked on copy)
        elif node.op == "call_module":
            module, name = modules[node.target], node.target
            inputs = tensor_args(node)
            if not inputs:
                unsupported(node, "a module without a tensor input")
            src = space[inputs[0]]
            if isinstance(module, (nn.Conv1d, nn.Conv2d)):
                extra = (None,) * (module.weight.dim() - 2)
                if module.groups == 1:
                    out = uf.new()
                    axes[f"{name}.weight"] = (out, src, *extra)
                    readers.append((name, src))
                elif module.groups == module.in_channels == module.out_channels:  # depthwise
                    out = src
                    axes[f"{name}.weight"] = (out, None, *extra)
                else:
                    unsupported(node, f"a grouped convolution ({module.groups} groups)")
                if module.bias is not None:
                    axes[f"{name}.bias"] = (out,)
                space[node] = out
            elif isinstance(module, nn.Linear):
                in_shape = _shape(inputs[0])
                if in_shape is None or len(in_shape) != 2:
                    unsupported(node, "a linear layer on a tensor that is not (batch, channels)")
                out = uf.new()
                axes[f"{name}.weight"] = (out, src)
                if module.bias is not None:
                    axes[f"{name}.bias"] = (out,)
                readers.append((name, src))
                space[node] = out
            elif isinstance(module, _BATCHNORMS):
                for p in ("weight", "bias", "running_mean", "running_var"):
                    if getattr(module, p, None) is not None:
                        axes[f"{name}.{p}"] = (src,)
                axes[f"{name}.num_batches_tracked"] = ()
                space[node] = src
            elif isinstance(module, _KEEPS_CHANNELS) or isinstance(module, nn.Flatten):
                space[node] = same_as_input(node)
            elif not any(True for _ in module.parameters(recurse=False)) and not list(module.buffers(recurse=False)):
                space[node] = same_as_input(node)
            else:
                unsupported(node, f"a layer edgekd cannot prune ({type(module).__name__})")
        elif node.op in ("call_function", "call_method"):
            target = node.target
            inputs = tensor_args(node)
            if target in _CONCATS:
                unsupported(node, "a concatenation of feature maps")
            if _shape(node) is None:
                continue  # not a tensor (size(), shape, getattr on a tensor)
            if not inputs:
                continue  # a new tensor (torch.zeros and the like): no channel space
            if target in _ELEMENTWISE and len(inputs) > 1:
                shapes = [_shape(a) for a in inputs]
                out = space[inputs[0]]
                for a, s in zip(inputs[1:], shapes[1:]):
                    if s is not None and len(s) >= 2 and shapes[0] is not None and s[1] == shapes[0][1] > 1:
                        uf.union(space[a], out)  # a residual sum (or a gate): both sides keep the same channels
                space[node] = out
            else:
                space[node] = same_as_input(node)
        else:
            unsupported(node, f"an fx node of kind {node.op}")
    return ChannelSpaces(axes, readers, fixed, uf)


@torch.no_grad()
def channel_importance(model: nn.Module, spaces: ChannelSpaces, images: torch.Tensor, batch: int = 256) -> dict:
    """{space: per-channel importance}: Σ over reading layers of rms(input channel) × ‖weights on that channel‖."""
    modules = dict(model.named_modules())
    sums: dict[str, torch.Tensor] = {}

    def hook(name):
        def record(_module, args):
            x = args[0].detach().float()
            per_channel = x.pow(2).mean(dim=[d for d in range(x.dim()) if d != 1])
            sums[name] = sums.get(name, 0) + per_channel * len(x)
        return record

    handles = [modules[name].register_forward_pre_hook(hook(name)) for name, _ in spaces.readers]
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(images), batch):
            model(images[i : i + batch])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    importance: dict[int, torch.Tensor] = {}
    for name, s in spaces.readers:
        w = modules[name].weight.detach().float()
        weight_norm = w.pow(2).sum(dim=[d for d in range(w.dim()) if d != 1]).sqrt()
        rms = (sums[name] / len(images)).sqrt()
        importance[s] = importance.get(s, 0) + rms * weight_norm
    return importance


@torch.no_grad()
def init_from_teacher(student: nn.Module, teacher: nn.Module, images: torch.Tensor) -> dict:
    """Load into ``student`` the teacher's weights on the channels that matter most; return what was kept.

    ``images``: normalised training images (N, C, H, W) on the models' device, a few thousand are plenty.
    """
    t_spaces = trace_channels(teacher, images[:2], "teacher")
    student_device = next(iter(student.parameters()), images).device
    s_spaces = trace_channels(student, images[:2].to(student_device), "student")
    t_state, s_state = teacher.state_dict(), student.state_dict()
    missing = [k for k in s_state if k not in t_state]
    if missing:
        raise PruneError(f"the teacher has no {missing[0]!r} (and {len(missing) - 1} more of the student's tensors)",
                         "student_init = \"teacher\" needs a student shaped like the teacher, only narrower "
                         "(e.g. airbench → airbench93)")
    to_teacher: dict[int, int] = {}
    width: dict[int, int] = {}
    for name, value in s_state.items():
        s_axes, t_axes = s_spaces.axes.get(name), t_spaces.axes.get(name)
        if s_axes is None or t_axes is None:
            if tuple(value.shape) != tuple(t_state[name].shape):
                raise PruneError(f"{name!r} is {tuple(value.shape)} in the student and {tuple(t_state[name].shape)} "
                                 "in the teacher, and edgekd does not know which channels it indexes",
                                 "start the student from scratch (student_init = \"random\")")
            continue
        for axis, (s, t) in enumerate(zip(s_axes, t_axes)):
            if (s is None) != (t is None) or (s is not None and to_teacher.setdefault(s, t) != t):
                raise PruneError(f"{name!r} plays another role in the student than in the teacher",
                                 "student_init = \"teacher\" needs the teacher's structure, only narrower")
            if s is None:
                if value.shape[axis] != t_state[name].shape[axis]:
                    raise PruneError(f"{name!r}: kernel or other non-channel sizes differ from the teacher's")
                continue
            n, n_teacher = value.shape[axis], t_state[name].shape[axis]
            if n > n_teacher:
                raise PruneError(f"{name!r} is wider in the student ({n}) than in the teacher ({n_teacher})",
                                 "a student started from the teacher keeps a subset of its channels")
            if width.setdefault(t, n) != n:
                raise PruneError(f"the student's channels joined at {name!r} have different widths")
    full_width = {}
    for name, ax in t_spaces.axes.items():
        for a, s in enumerate(ax):
            if s is not None and name in t_state:
                full_width.setdefault(s, t_state[name].shape[a])
    narrowed = {t: w for t, w in width.items() if w < full_width.get(t, w)}
    if set(narrowed) & t_spaces.fixed:
        raise PruneError("the student's input or output width differs from the teacher's",
                         "use the teacher's number of classes and input channels")
    importance = channel_importance(teacher, t_spaces, images) if narrowed else {}
    keep = {}
    for t, w in narrowed.items():
        if t not in importance:  # nobody reads it (a dead end): keep the first channels
            keep[t] = torch.arange(w, device=images.device)
        else:
            keep[t] = importance[t].topk(w).indices.sort().values
    new_state = {}
    for name, value in s_state.items():
        tensor = t_state[name]
        for axis, s in enumerate(s_spaces.axes.get(name) or ()):
            if s is not None and to_teacher[s] in keep:
                tensor = tensor.index_select(axis, keep[to_teacher[s]].to(tensor.device))
        new_state[name] = tensor.detach().clone().to(value.dtype)
    student.load_state_dict(new_state)
    kept = sum(int(w) for w in narrowed.values())
    total = sum(int(full_width[t]) for t in narrowed)
    return {"from": "teacher", "spaces": len(full_width), "narrowed_spaces": len(narrowed),
            "kept_channels": kept, "of_channels": total, "importance_images": int(len(images))}
