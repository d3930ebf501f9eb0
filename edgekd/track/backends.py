"""Encoder backends for the DFE tracker: PyTorch, ONNX Runtime, LiteRT.

Each backend maps a float32 NCHW batch of search regions (CIELAB in [0, 1]) to the
float32 encodings (N, C, S−30, S−30). The runtime is imported only when a backend is
built, so the tracker runs on a device with ONNX Runtime or LiteRT and no torch.
``input_size`` is the fixed spatial size of an exported encoder (None: any size), and
``fixed_batch`` the batch it was exported with (None: any batch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.errors import EdgekdError, require


class EncoderBackend:
    name = "?"
    input_size: int | None = None
    fixed_batch: int | None = None
    _context: int | None = None

    @property
    def context(self) -> int:
        """Input pixels one encoding depends on (31, or more when the encoder normalises its input): input − output + 1."""
        if self._context is None:
            size = self.input_size or 63
            out = self(np.full((1, 3, size, size), 0.5, np.float32)).shape[-1]
            self._context = size - out + 1
        return self._context

    def encode(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self.fixed_batch is None or len(batch) == self.fixed_batch:
            return self.encode(batch)
        # A model exported with a fixed batch: run it point by point (padding the tail).
        b = self.fixed_batch
        out = []
        for i in range(0, len(batch), b):
            chunk = batch[i : i + b]
            n = len(chunk)
            if n < b:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], b - n, axis=0)])
            out.append(self.encode(chunk)[:n])
        return np.concatenate(out)


class TorchEncoder(EncoderBackend):
    name = "torch"

    def __init__(self, module, threads: int | None = None):
        torch = require("torch", extra="train")
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.module = module.eval()
        self._context = getattr(module, "context", None)

    @classmethod
    def from_file(cls, path: str | Path, **kw):
        from edgekd.models.checkpoint import load_model

        model, info = load_model(path)
        enc = getattr(model, "encoder", model)
        from edgekd.models.dfe_autoencoder import DFEEncoder

        if not isinstance(enc, DFEEncoder):
            raise EdgekdError(f"{path} holds a {info['arch']!r} model, not a DFE autoencoder/encoder", "train one with: edgekd track train")
        return cls(enc, **kw)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.module(self.torch.from_numpy(batch)).numpy()


class OnnxEncoder(EncoderBackend):
    name = "onnxruntime"

    def __init__(self, path: str | Path, threads: int | None = None):
        ort = require("onnxruntime", extra="device")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - any load failure is a bad model file
            raise EdgekdError(f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0][:200]}") from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.input_size = shape[2] if isinstance(shape[2], int) else None

    def encode(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


class LiteRTEncoder(EncoderBackend):
    """LiteRT (ai-edge-litert, falling back to tflite-runtime). NHWC or NCHW models; int8 I/O handled.

    TFLite files are exported with batch 1; the input is resized to the number of points so one
    ``invoke`` encodes every point of a frame, as with ONNX Runtime. A model whose shapes cannot
    be resized is run point by point.
    """

    name = "litert"

    def __init__(self, path: str | Path, threads: int | None = None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            Interpreter = require("tflite_runtime.interpreter", extra="device", package="ai-edge-litert").Interpreter
        try:
            self.interp = Interpreter(model_path=str(path), num_threads=threads or None)
            self.interp.allocate_tensors()
        except Exception as exc:  # noqa: BLE001
            raise EdgekdError(f"LiteRT cannot load {path}: {str(exc).splitlines()[0][:200]}") from None
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        shape = list(self.inp["shape"])
        self.nhwc = shape[-1] == 3 and shape[1] != 3
        self.input_size = int(shape[1] if self.nhwc else shape[2])
        self.batch = int(shape[0])
        first = self.batch
        try:
            self._resize(first + 1)
            self.fixed_batch = None
        except Exception:  # noqa: BLE001 - a model whose shapes are frozen: loop over points instead
            self.fixed_batch = first
        if self.fixed_batch is None and not self._batch_resize_is_exact():
            # some graphs resize without complaint but keep a batch size baked into an op (a strided slice):
            # run such a model point by point rather than trust it
            self._resize(first)
            self.fixed_batch = first

    def _batch_resize_is_exact(self) -> bool:
        size = self.input_size
        x = np.random.default_rng(0).uniform(0, 1, (2, 3, size, size)).astype(np.float32)
        both = self.encode(x)
        one = np.concatenate([self.encode(x[:1]), self.encode(x[1:])])
        return both.shape == one.shape and bool(np.allclose(both, one, rtol=1e-3, atol=1e-3 * max(1.0, float(np.abs(one).max()))))

    def _resize(self, n: int) -> None:
        shape = [n, *self.inp["shape"][1:]]
        self.interp.resize_tensor_input(self.inp["index"], shape)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self.batch = n

    def encode(self, batch: np.ndarray) -> np.ndarray:
        if self.fixed_batch is None and len(batch) != self.batch:
            self._resize(len(batch))
        x = batch.transpose(0, 2, 3, 1) if self.nhwc else batch
        dtype = self.inp["dtype"]
        if dtype != np.float32:
            scale, zero = self.inp["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
        self.interp.set_tensor(self.inp["index"], np.ascontiguousarray(x))
        self.interp.invoke()
        y = self.interp.get_tensor(self.out["index"])
        if self.out["dtype"] != np.float32:
            scale, zero = self.out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        if self.nhwc and y.ndim == 4 and y.shape[1] != y.shape[-1]:
            y = y.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(y, dtype=np.float32)


def load_encoder(encoder, threads: int | None = None) -> EncoderBackend:
    """A path (.pt/.safetensors → torch, .onnx → ORT, .tflite → LiteRT), an nn.Module or a backend."""
    if isinstance(encoder, EncoderBackend):
        return encoder
    if isinstance(encoder, (str, Path)):
        from edgekd.formats import format_of_file

        path = Path(encoder)
        fmt = format_of_file(path)
        if not path.is_file():
            raise EdgekdError(f"encoder file not found: {path}", "train one with `edgekd track train` or pass an exported model")
        if fmt.runtime == "onnxruntime":
            return OnnxEncoder(path, threads)
        if fmt.runtime == "litert":
            return LiteRTEncoder(path, threads)
        return TorchEncoder.from_file(path, threads=threads)
    if hasattr(encoder, "forward") and hasattr(encoder, "eval"):
        return TorchEncoder(getattr(encoder, "encoder", encoder), threads)
    raise EdgekdError(f"cannot use {type(encoder).__name__} as a DFE encoder", "pass a .pt/.onnx/.tflite path or an nn.Module")
