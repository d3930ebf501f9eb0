"""Runtime adapters behind one small interface.

Each adapter is created by a loader (whose duration the harness reports as session
creation time) and offers ``inputs`` (what the model asks for), ``set_input_shapes``
(batch / dynamic dims), ``to_native`` (converting numpy feeds once, outside the timed
region), ``activate`` (per-block settings that are process-wide, e.g. torch threads)
and ``run``. Runtimes are imported inside their loaders: importing this module costs
nothing and never touches torch.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgekd.errors import EdgekdError

# Short names users type (--provider cuda,cpu) → ONNX Runtime execution providers.
ORT_PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
    "acl": "ACLExecutionProvider",
}

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


@dataclass
class TensorSpec:
    name: str
    shape: tuple  # ints; None where the model leaves a dimension open
    dtype: Any  # numpy dtype, or None when the runtime reports a type numpy cannot hold
    scale: float = 0.0  # quantisation of integer tensors (0 = not quantised)
    zero_point: int = 0

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": np.dtype(self.dtype).name if self.dtype is not None else None,
            **({"scale": self.scale, "zero_point": self.zero_point} if self.scale else {}),
        }


@dataclass
class Session:
    runtime: str  # onnxruntime | litert | tflite-runtime | torch
    backend: str  # what actually executes: providers, delegate, "eager"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    notes: list[str] = field(default_factory=list)

    def set_input_shapes(self, shapes: Sequence[tuple]) -> None:
        for spec, shape in zip(self.inputs, shapes):
            for want, have in zip(spec.shape, shape):
                if want is not None and want != have:
                    raise EdgekdError(
                        f"input {spec.name!r} has the fixed shape {list(spec.shape)}; cannot feed {list(shape)}",
                        "use --batch 1 or export the model with a dynamic batch dimension",
                    )

    def to_native(self, feeds: list[np.ndarray]):
        return feeds

    def activate(self) -> None:
        pass

    def run(self, feeds) -> list:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _dim(d) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]


# ─── ONNX Runtime ───────────────────────────────────────────────────────────


class OrtSession(Session):
    def __init__(self, sess, backend: str, notes: list[str]):
        self._sess = sess
        self._names = [i.name for i in sess.get_inputs()]
        super().__init__(
            runtime="onnxruntime",
            backend=backend,
            inputs=[TensorSpec(i.name, tuple(_dim(d) for d in i.shape), _ORT_TYPES.get(i.type)) for i in sess.get_inputs()],
            outputs=[TensorSpec(o.name, tuple(_dim(d) for d in o.shape), _ORT_TYPES.get(o.type)) for o in sess.get_outputs()],
            notes=notes,
        )

    def to_native(self, feeds):
        return dict(zip(self._names, feeds))

    def run(self, feeds):
        return self._sess.run(None, feeds)


def resolve_ort_providers(requested: Sequence[str] | None, available: Sequence[str]) -> tuple[list[str], list[str]]:
    """Requested providers in order, minus those this build lacks (with a note), CPU last."""
    notes: list[str] = []
    wanted = [ORT_PROVIDER_ALIASES.get(p.strip().lower(), p.strip()) for p in (requested or ["cpu"]) if p.strip()]
    chosen = [p for p in dict.fromkeys(wanted) if p in available]
    missing = [p for p in dict.fromkeys(wanted) if p not in available]
    if missing:
        notes.append(
            f"{', '.join(missing)} not in this onnxruntime build (has {', '.join(available)}); "
            + ("using " + ", ".join(chosen) if chosen else "falling back to CPUExecutionProvider")
        )
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")  # nodes no accelerator takes still need a home
    return chosen, notes


def load_onnxruntime(
    path: Path,
    threads: int,
    providers: Sequence[str] | None = None,
    provider_options: dict | None = None,
    **_,
) -> Session:
    try:
        import onnxruntime as ort
    except ImportError:
        raise EdgekdError("onnxruntime is not installed", 'install it with: pip install "edgekd[device]"') from None
    chosen, notes = resolve_ort_providers(providers, ort.get_available_providers())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # EP fallback warnings are reported as notes instead
    provider_options = provider_options or {}
    try:
        sess = ort.InferenceSession(
            str(path), sess_options=opts, providers=[(p, dict(provider_options.get(p, {}))) for p in chosen]
        )
    except Exception as exc:  # noqa: BLE001 - ORT raises several private types for a bad file
        raise EdgekdError(
            f"{path.name}: ONNX Runtime cannot load it ({_first_line(exc)})",
            "is it a complete .onnx file? re-export it with edgekd export",
        ) from None
    used = sess.get_providers()
    dropped = [p for p in chosen if p not in used]
    if dropped:
        notes.append(f"onnxruntime could not start {', '.join(dropped)}; ran on {', '.join(used)}")
    return OrtSession(sess, backend="+".join(p.replace("ExecutionProvider", "") for p in used), notes=notes)


# ─── LiteRT / tflite-runtime ────────────────────────────────────────────────


class TfliteSession(Session):
    def __init__(self, interpreter, runtime: str, backend: str, notes: list[str]):
        self._it = interpreter
        super().__init__(runtime=runtime, backend=backend, inputs=[], outputs=[], notes=notes)
        self._refresh()

    def _refresh(self):
        def spec(d):
            sig = d.get("shape_signature", d["shape"])
            shape = tuple(None if int(s) < 0 else int(s) for s in sig)
            scale, zp = d.get("quantization", (0.0, 0))
            dtype = np.dtype(d["dtype"])
            quantised = np.issubdtype(dtype, np.integer) and scale
            return TensorSpec(d["name"], shape, dtype, float(scale) if quantised else 0.0, int(zp) if quantised else 0)

        self._in = self._it.get_input_details()
        self._out = self._it.get_output_details()
        self.inputs = [spec(d) for d in self._in]
        self.outputs = [spec(d) for d in self._out]

    def set_input_shapes(self, shapes):
        # TFLite can resize any input; this is how a batch-1 export runs at batch 8.
        changed = False
        for d, shape in zip(self._in, shapes):
            if tuple(int(s) for s in d["shape"]) != tuple(shape):
                self._it.resize_tensor_input(d["index"], list(shape), strict=False)
                changed = True
        if changed:
            try:
                self._it.allocate_tensors()
            except Exception as exc:  # noqa: BLE001
                raise EdgekdError(f"cannot resize the model's input to {list(shapes[0])} ({_first_line(exc)})") from None
            self._refresh()

    def run(self, feeds):
        it = self._it
        for d, x in zip(self._in, feeds):
            it.set_tensor(d["index"], x)
        it.invoke()
        return [it.get_tensor(d["index"]) for d in self._out]


_TFLITE_MODULES = {"ai-edge-litert": "ai_edge_litert.interpreter", "tflite-runtime": "tflite_runtime.interpreter"}


def _litert_module(order: Sequence[str] = ("ai-edge-litert", "tflite-runtime")):
    """ai-edge-litert first by default; tflite-runtime (old, no XNNPACK for INT8) only as a fallback."""
    for name in order:
        if name not in _TFLITE_MODULES:
            raise EdgekdError(f"unknown TFLite runtime {name!r}", f"choose from: {', '.join(_TFLITE_MODULES)}")
        try:
            mod = importlib.import_module(_TFLITE_MODULES[name])
        except ImportError:
            continue
        return mod, ("litert" if name == "ai-edge-litert" else name)
    raise EdgekdError(
        f"no TFLite runtime installed (tried {', '.join(order)})",
        'install it with: pip install "edgekd[device]"',
    )


def load_tflite(
    path: Path, threads: int, delegate: str = "xnnpack", tflite_runtimes: Sequence[str] | None = None, **_
) -> Session:
    mod, runtime = _litert_module(tflite_runtimes or ("ai-edge-litert", "tflite-runtime"))
    notes: list[str] = []
    kwargs: dict[str, Any] = {"model_path": str(path), "num_threads": threads}
    delegate = (delegate or "xnnpack").strip()
    if delegate.lower() in ("none", "off", "builtin"):
        # Without the default delegate, every op runs on the reference-optimised built-in kernels.
        kwargs["experimental_op_resolver_type"] = mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        backend = "builtin"
    elif delegate.lower() == "xnnpack":
        backend = "xnnpack"
        if runtime == "tflite-runtime":
            notes.append("tflite-runtime: XNNPACK may not cover INT8 ops (much slower than ai-edge-litert)")
    else:
        if not Path(delegate).is_file():
            raise EdgekdError(f"delegate library not found: {delegate}", "use xnnpack, none, or the path of a delegate .so")
        try:
            kwargs["experimental_delegates"] = [mod.load_delegate(delegate)]
        except Exception as exc:  # noqa: BLE001
            raise EdgekdError(f"cannot load delegate {delegate} ({_first_line(exc)})") from None
        backend = Path(delegate).name
    try:
        it = mod.Interpreter(**kwargs)
        it.allocate_tensors()
    except Exception as exc:  # noqa: BLE001 - corrupt flatbuffers raise ValueError/RuntimeError
        raise EdgekdError(
            f"{path.name}: {runtime} cannot load it ({_first_line(exc)})",
            "is it a complete .tflite file? re-export it with edgekd export",
        ) from None
    return TfliteSession(it, runtime=runtime, backend=backend, notes=notes)


# ─── PyTorch eager (optional; lets a teacher be compared with its exports) ───


class TorchSession(Session):
    def __init__(self, model, torch, threads: int, notes: list[str]):
        self._model = model
        self._torch = torch
        self._threads = threads
        super().__init__(runtime="torch", backend="eager", inputs=[], outputs=[], notes=notes)

    def set_input_shapes(self, shapes):
        self.inputs = [TensorSpec(f"input{i}", tuple(s), np.float32) for i, s in enumerate(shapes)]

    def to_native(self, feeds):
        return [self._torch.from_numpy(np.ascontiguousarray(x)) for x in feeds]

    def activate(self):
        # torch's thread count is process-wide, so it is set before each block of this model.
        if self._torch.get_num_threads() != self._threads:
            self._torch.set_num_threads(self._threads)

    def run(self, feeds):
        with self._torch.inference_mode():
            out = self._model(*feeds)
        return [out.numpy()] if hasattr(out, "numpy") else out


def load_torch(path: Path, threads: int, arch: str | None = None, arch_kwargs: dict | None = None, **_) -> Session:
    """Any model file edgekd reads (edgekd .pt, state_dict + arch, TorchScript, .pt2), in eager PyTorch."""
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        raise EdgekdError(
            f"{path.name}: PyTorch is not installed, so eager models cannot be benchmarked here",
            'bench the exported .onnx/.tflite instead, or pip install "edgekd[train]"',
        ) from None
    from edgekd.models.sources import load_model

    model = load_model(path, arch=arch, kwargs=arch_kwargs).model
    model.eval()
    torch.set_num_threads(threads)
    return TorchSession(model, torch, threads, notes=[])


def import_runtime(runtime: str, tflite_runtimes: Sequence[str] | None = None) -> None:
    """Import a runtime before its first session is timed, so import cost is not billed to a model."""
    try:
        if runtime == "onnxruntime":
            import onnxruntime  # noqa: F401
        elif runtime == "litert":
            _litert_module(tflite_runtimes or ("ai-edge-litert", "tflite-runtime"))
        elif runtime == "torch":
            importlib.import_module("torch")
            importlib.import_module("edgekd.models.sources")
    except (ImportError, EdgekdError):
        pass  # the loader raises the clear message


LOADERS = {"onnxruntime": load_onnxruntime, "litert": load_tflite, "torch": load_torch}


def open_session(path: Path, runtime: str, threads: int, **options) -> Session:
    if runtime not in LOADERS:
        raise EdgekdError(f"unknown runtime {runtime!r}", f"choose from: {', '.join(LOADERS)}")
    return LOADERS[runtime](Path(path), threads=threads, **options)


def runtime_versions() -> dict:
    """Installed runtime versions, read from package metadata so that nothing (torch!) gets imported."""
    out = {}
    for dist in ("onnxruntime", "onnxruntime-gpu", "ai-edge-litert", "tflite-runtime", "torch", "numpy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    if "onnxruntime" in out or "onnxruntime-gpu" in out:
        try:
            import onnxruntime as ort

            out["onnxruntime_providers"] = ort.get_available_providers()
        except Exception:  # noqa: BLE001 - a broken install is recorded, not fatal
            out["onnxruntime_providers"] = "import failed"
    if "ai-edge-litert" in out:
        out["litert_delegates"] = "XNNPACK built in (default on)"
    return out


def cpu_affinity() -> list[int] | None:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
