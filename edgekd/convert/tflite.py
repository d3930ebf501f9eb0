"""TFLite export with litert-torch (no TensorFlow) and full-integer INT8.

Two full-integer INT8 methods, and neither wins everywhere (benchmarks/export_robustness.md):
ai-edge-quantizer's ``static_wi8_ai8`` recipe on the fp32 .tflite makes every op int8, but
its calibration clipped ranges on some models (a weak digits student: 4–6 pp lost on test;
DFE encoder: output range cut from 7.6 to 3.0); litert-torch's PT2E flow leaves residual
ADDs in float (with min-max or histogram activation ranges). So the classifier exporter
builds the candidates and keeps the best on a held-out split (``edgekd.convert.classifier``);
this function's default is ai-edge-quantizer.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np

from edgekd.convert.onnx import ExportError, _quiet_loggers, _unsupported_op
from edgekd.convert.spec import InputSpec
from edgekd.errors import require


@contextlib.contextmanager
def _quiet():
    """litert-torch and TF-Lite print progress and C++ logs; keep them off the terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            _quiet_loggers("absl", "litert_torch", "torch", "jax", "root"):
        yield


def export_tflite(model, spec: InputSpec, path: str | Path) -> Path:
    import torch

    litert_torch = require("litert_torch", extra="export", package="litert-torch")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = (torch.zeros(*spec.shape),)
    try:
        with _quiet():
            litert_torch.convert(model.eval(), example).export(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"TFLite export failed: {_unsupported_op(exc)}", "this format is skipped") from None
    return path


def export_tflite_int8(
    model, spec: InputSpec, path: str | Path, calibration: np.ndarray, fp32_path: str | Path | None = None,
    method: str = "ai-edge-quantizer", float_modules: tuple[str, ...] = (), activation_observer: str = "histogram",
) -> Path:
    """Full-integer INT8 .tflite (int8 input and output) calibrated on ``calibration`` (float NCHW).

    PT2E only: ``float_modules`` are submodule names, e.g. ``("features.12",)``, left in float;
    ``activation_observer`` is "histogram" (litert-torch's default: clips outliers to minimise the
    L2 error) or "minmax" (keeps the full range, like ONNX Runtime's MinMax calibration).
    """
    path = Path(path)
    if method == "pt2e":
        return _pt2e(model, spec, path, calibration, float_modules, activation_observer)
    if float_modules or activation_observer != "histogram":
        raise ExportError("float modules and the activation observer are PT2E options", "pass method='pt2e'")
    if fp32_path is None or not Path(fp32_path).exists():
        fp32_path = export_tflite(model, spec, path.with_name(path.stem + ".fp32.tmp.tflite"))
    interpreter = require("ai_edge_litert.interpreter", extra="device", package="ai-edge-litert")
    aeq = require("ai_edge_quantizer", extra="export", package="ai-edge-quantizer")
    sigs = interpreter.Interpreter(model_path=str(fp32_path)).get_signature_list()
    key = next(iter(sigs))
    input_name = sigs[key]["inputs"][0]
    samples = [{input_name: calibration[i : i + 1].astype(np.float32)} for i in range(len(calibration))]
    try:
        with _quiet():
            qt = aeq.quantizer.Quantizer(str(fp32_path), aeq.recipe.static_wi8_ai8())
            result = qt.quantize(qt.calibrate({key: samples}))
            path.unlink(missing_ok=True)
            result.export_model(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"TFLite INT8 quantisation failed: {_unsupported_op(exc)}", "this format is skipped") from None
    finally:
        if str(fp32_path).endswith(".fp32.tmp.tflite"):
            Path(fp32_path).unlink(missing_ok=True)
    return path


def _partial_quantizer(pt2e_quantizer, config, float_modules: tuple[str, ...]):
    """A PT2E quantizer that leaves the ops of ``float_modules`` in float.

    litert-torch's own ``set_module_name`` cannot express "not quantised" (None is rejected) and
    its name filter mangles torch.export's module-stack keys, so the filter here reads the module
    paths themselves.
    """

    class PartialQuantizer(pt2e_quantizer.PT2EQuantizer):
        def annotate(self, model):
            def quantized(node) -> bool:
                paths = [p for p, _ in node.meta.get("nn_module_stack", {}).values()]
                return not any(p == f or p.startswith(f + ".") for p in paths for f in float_modules)

            self._annotate_all_static_patterns(model, self.global_config, quantized)
            pt2e_quantizer.propagate_annotation(model)
            return model

    return PartialQuantizer().set_global(config)


def _pt2e(model, spec: InputSpec, path: Path, calibration: np.ndarray, float_modules: tuple[str, ...] = (),
          activation_observer: str = "histogram") -> Path:
    import dataclasses

    import torch

    litert_torch = require("litert_torch", extra="export", package="litert-torch")
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e

    example = (torch.zeros(*spec.shape),)
    # Exported with a dynamic batch so calibration runs in batches of 32 (the converted model is batch 1).
    calib_example = (torch.zeros(2, *spec.shape[1:]),)
    dynamic = ({0: torch.export.Dim("batch", min=1, max=4096)},)
    known = {name for name, _ in model.named_modules()}
    unknown = [f for f in float_modules if f not in known]
    if unknown:
        raise ExportError(f"no submodule named {', '.join(unknown)} to keep in float",
                          f"choose among: {', '.join(sorted(n for n in known if n)[:12])} …")
    if activation_observer not in ("histogram", "minmax"):
        raise ExportError(f"unknown activation observer {activation_observer!r}", "use histogram or minmax")
    try:
        with _quiet():
            config = pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True)
            if activation_observer == "minmax":
                from torchao.quantization.pt2e.observer import MinMaxObserver

                act = dataclasses.replace(config.input_activation, observer_or_fake_quant_ctr=MinMaxObserver)
                config = dataclasses.replace(config, input_activation=act, output_activation=act)
            quantizer = (_partial_quantizer(pt2e_quantizer, config, tuple(float_modules)) if float_modules
                         else pt2e_quantizer.PT2EQuantizer().set_global(config))
            m = torch.export.export(model.eval(), calib_example, dynamic_shapes=dynamic).module()
            m = quantize_pt2e.prepare_pt2e(m, quantizer)
            with torch.no_grad():
                for i in range(0, len(calibration), 32):
                    m(torch.from_numpy(calibration[i : i + 32].astype(np.float32)))
            m = quantize_pt2e.convert_pt2e(m, fold_quantize=False)
            litert_torch.convert(m, example, quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"TFLite PT2E INT8 failed: {_unsupported_op(exc)}", "this format is skipped") from None
    return path
