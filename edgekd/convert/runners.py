"""Run an exported model on float NCHW batches with the device runtime (no torch).

Wraps ``edgekd.bench.runtimes`` sessions: splits batches to what the model accepts,
quantises inputs of full-integer models with the model's own scale/zero-point and
de-quantises their outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.bench.runtimes import open_session
from edgekd.errors import EdgekdError
from edgekd.formats import format_of_file


class Predictor:
    def __init__(self, path: str | Path, threads: int = 1, runtime: str | None = None):
        self.path = Path(path)
        fmt = format_of_file(self.path)
        self.runtime = runtime or fmt.runtime
        self.session = open_session(self.path, self.runtime, threads=threads)
        spec = self.session.inputs[0]
        self.in_spec, self.out_spec = spec, self.session.outputs[0]
        self.fixed_batch = spec.shape[0] if spec.shape and spec.shape[0] is not None else None

    def _quantise(self, x: np.ndarray) -> np.ndarray:
        s = self.in_spec
        if s.scale:
            info = np.iinfo(s.dtype)
            return np.clip(np.round(x / s.scale) + s.zero_point, info.min, info.max).astype(s.dtype)
        return x.astype(s.dtype or np.float32)

    def _dequantise(self, y: np.ndarray) -> np.ndarray:
        o = self.out_spec
        if o.scale:
            return (y.astype(np.float32) - o.zero_point) * np.float32(o.scale)
        return y.astype(np.float32)

    def __call__(self, x: np.ndarray, batch: int = 64) -> np.ndarray:
        expected = [d for d in self.in_spec.shape[1:]]
        if list(x.shape[1:]) != [d if d is not None else x.shape[i + 1] for i, d in enumerate(expected)]:
            raise EdgekdError(f"{self.path.name} expects input {list(self.in_spec.shape)}, got {list(x.shape)}")
        if not np.isfinite(x).all():
            raise EdgekdError("input contains NaN or infinite values", "check the preprocessing of your images")
        step = self.fixed_batch or batch
        outs = []
        for lo in range(0, len(x), step):
            chunk = x[lo : lo + step]
            n = len(chunk)
            if self.fixed_batch and n < self.fixed_batch:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.fixed_batch - n, 0)])
            self.session.set_input_shapes([chunk.shape])
            y = self.session.run(self.session.to_native([self._quantise(chunk)]))[0]
            outs.append(self._dequantise(np.asarray(y))[:n])
        return np.concatenate(outs)
