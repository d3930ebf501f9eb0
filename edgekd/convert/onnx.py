"""ONNX export (dynamo exporter, one file) and ONNX Runtime static INT8 quantisation.

INT8 is QDQ with per-channel int8 weights and **uint8** activations, calibrated on training
images (MinMax, or percentile ranges where those agree better with the float model:
``edgekd.convert.classifier`` chooses on validation): on this CPU (AVX-512 VNNI) uint8 activations ran about 2.3× faster
than fp32 while int8 activations were barely faster, and ``quantize_dynamic`` made
these CNNs 3–9× slower (DESIGN.md).
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from edgekd.convert.spec import InputSpec
from edgekd.errors import EdgekdError, require


class ExportError(EdgekdError):
    """A format could not be produced; the other formats still are."""


def export_onnx(model, spec: InputSpec, path: str | Path, opset: int | None = None) -> Path:
    import torch

    onnx = require("onnx", extra="export")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    example = torch.zeros(*((2,) + tuple(spec.shape[1:]) if spec.dynamic_batch else spec.shape))
    kwargs = {"dynamic_shapes": ({0: torch.export.Dim("batch")},)} if spec.dynamic_batch else {}
    if opset:
        kwargs["opset_version"] = opset
    # The dynamo exporter prints pages of progress; keep the user's terminal readable.
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), _quiet_loggers("torch.onnx", "onnxscript"):
            torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False,
                              input_names=[spec.name], output_names=[spec.output_name], **kwargs)
    except Exception as exc:  # noqa: BLE001 - report which op/format failed, keep going with the others
        raise ExportError(f"ONNX export failed: {_unsupported_op(exc)}", "this format is skipped") from None
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"the exported ONNX model does not pass onnx.checker: {exc}") from None
    return path


class _ArrayReader:
    """onnxruntime CalibrationDataReader over a float32 NCHW array, one image per call."""

    def __init__(self, name: str, data: np.ndarray, batch: int = 1):
        self._it = iter([{name: data[i : i + batch]} for i in range(0, len(data), batch)])

    def get_next(self):
        return next(self._it, None)

    def __iter__(self):  # the QDQ debugger iterates instead of calling get_next
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def quantize_onnx_int8(
    fp32_path: str | Path,
    path: str | Path,
    calibration: np.ndarray,
    input_name: str = "input",
    exclude_nodes: Sequence[str] = (),
    method: str = "minmax",
    reduce_range: bool = False,
    tensor_overrides: dict | None = None,
) -> Path:
    """Static QDQ INT8 of ``fp32_path``; ``calibration`` is preprocessed float32 NCHW.

    ``tensor_overrides`` (ONNX Runtime's ``TensorQuantOverrides``) pins tensors' scales, e.g. those a
    quantisation-aware fine-tune trained against (:mod:`edgekd.convert.qat`).

    ``reduce_range`` quantises weights to 7 bits. ONNX Runtime's U8S8 kernels on x86 CPUs without VNNI
    (AVX2 only) sum pairs of u8×s8 products in int16, which saturates with 8-bit weights; 7-bit weights
    cannot overflow it. Same file format and speed, slightly coarser weights.
    """
    q = require("onnxruntime.quantization", extra="export", package="onnxruntime")
    reader_cls = type("Reader", (_ArrayReader, q.CalibrationDataReader), {})
    methods = {"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
               "percentile": q.CalibrationMethod.Percentile}
    if method not in methods:
        raise EdgekdError(f"unknown calibration method {method!r}", f"use one of {', '.join(methods)}")
    path = Path(path)
    if not np.isfinite(calibration).all():
        raise ExportError("calibration inputs contain NaN/inf", "check the images and the normalisation")
    try:
        with _quiet_loggers("root"):
            q.quantize_static(
                str(fp32_path), str(path), reader_cls(input_name, calibration.astype(np.float32)),
                quant_format=q.QuantFormat.QDQ, per_channel=True,
                activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
                calibrate_method=methods[method], nodes_to_exclude=list(exclude_nodes), reduce_range=bool(reduce_range),
                extra_options={"TensorQuantOverrides": tensor_overrides} if tensor_overrides else None,
            )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - e.g. "scale issue" on NaN/degenerate ranges
        path.unlink(missing_ok=True)
        raise ExportError(f"ONNX Runtime INT8 quantisation failed ({type(exc).__name__}: {str(exc)[:120]})",
                          "check the model's outputs on the calibration images for NaN/inf") from None
    return path


def saturates_8bit_weights() -> bool:
    """True on x86 CPUs without VNNI, where ONNX Runtime's U8S8 INT8 kernels can overflow int16 with 8-bit weights.

    ONNX Runtime's quantisation guide recommends ``reduce_range`` (7-bit weights) there. ARM CPUs and x86 with
    AVX-VNNI / AVX512-VNNI / AMX accumulate in int32 and keep full 8-bit weights.
    """
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: assume a modern CPU
        return False
    return not any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def onnx_op_sensitivity(fp32_path: str | Path, int8_path: str | Path, calibration: np.ndarray,
                        input_name: str = "input") -> list[tuple[str, float]]:
    """Nodes of the INT8 model ranked by how much quantising them hurts (lowest SQNR first).

    Uses ONNX Runtime's QDQ debugging tools: activations of the float and the QDQ model
    are collected on the calibration images and compared tensor by tensor.
    """
    dbg = require("onnxruntime.quantization.qdq_loss_debug", extra="export", package="onnxruntime")
    onnx = require("onnx", extra="export")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        f_aug, q_aug = Path(tmp) / "f.onnx", Path(tmp) / "q.onnx"
        dbg.modify_model_output_intermediate_tensors(str(fp32_path), str(f_aug), save_as_external_data=False)
        dbg.modify_model_output_intermediate_tensors(str(int8_path), str(q_aug), save_as_external_data=False)
        data = calibration[:32].astype(np.float32)
        f_act = dbg.collect_activations(str(f_aug), _ArrayReader(input_name, data))
        q_act = dbg.collect_activations(str(q_aug), _ArrayReader(input_name, data))
    matched = dbg.create_activation_matching(q_act, f_act)
    errors = dbg.compute_activation_error(matched)
    # Map each float tensor back to the node that produces it.
    producer = {out: node.name for node in onnx.load(str(fp32_path)).graph.node for out in node.output}
    ranked = [(producer[t], float(e.get("xmodel_err", np.inf))) for t, e in errors.items() if t in producer]
    return sorted(ranked, key=lambda r: r[1])


@contextlib.contextmanager
def _quiet_loggers(*names: str):
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def _unsupported_op(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    for line in text.splitlines():
        if "not supported" in line.lower() or "unsupported" in line.lower() or "aten::" in line or "aten." in line:
            return line.strip()[:300]
    return text.splitlines()[0][:300]
