"""Export any ``nn.Module`` with an :class:`InputSpec` to every format in the table.

``export_model`` writes each requested format, checks numeric parity against PyTorch on
real inputs with the runtime that will run the file on the device, and keeps going when
one format fails (the failure, naming the op, is recorded). Classifier accuracy gates
and cards are built on top of it in :mod:`edgekd.convert.classifier`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from edgekd.convert.runners import Predictor
from edgekd.convert.spec import InputSpec
from edgekd.errors import EdgekdError
from edgekd.formats import Format, parse_formats
from edgekd.utils.io import sha256_file


def _call_exporter(fmt: Format, model, spec: InputSpec, out_dir: Path, calibration: np.ndarray, files: dict, **options):
    module, func = fmt.exporter.split(":")
    fn = getattr(importlib.import_module(module), func)
    dest = out_dir / fmt.filename
    if fmt.name == "onnx":
        return fn(model, spec, dest)
    if fmt.name == "onnx-int8":
        from edgekd.convert.onnx import export_onnx

        # INT8 is quantised from the fp32 file; write it if that format was not asked for.
        fp32 = files.get("onnx") or export_onnx(model, spec, out_dir / "model.onnx")
        return fn(fp32, dest, calibration, input_name=spec.name, exclude_nodes=options.get("exclude_nodes", ()),
                  reduce_range=options.get("onnx_reduce_range", False))
    if fmt.name == "tflite":
        return fn(model, spec, dest)
    if fmt.name == "tflite-int8":
        return fn(model, spec, dest, calibration, fp32_path=files.get("tflite"),
                  method=options.get("tflite_int8_method", "ai-edge-quantizer"),
                  **({"activation_observer": options["tflite_activation_observer"]}
                     if "tflite_activation_observer" in options else {}))
    return fn(model, spec, dest, calibration)


def parity(path: Path, reference: np.ndarray, inputs: np.ndarray, threads: int = 1) -> dict:
    """Max |Δ| and top-1 agreement of a file's outputs against the PyTorch outputs."""
    out = Predictor(path, threads=threads)(inputs)
    ref2, out2 = reference.reshape(len(reference), -1), out.reshape(len(out), -1)
    res = {"max_abs_diff": float(np.abs(out2 - ref2).max()), "mean_abs_diff": float(np.abs(out2 - ref2).mean())}
    if reference.ndim == 2 and reference.shape[1] > 1:  # class scores, not feature maps
        res["top1_agreement"] = float((out2.argmax(1) == ref2.argmax(1)).mean())
    return res


def export_model(
    model,
    spec: InputSpec,
    out_dir: str | Path,
    formats: str | Sequence[str] | None = None,
    calibration: np.ndarray | None = None,
    parity_inputs: np.ndarray | None = None,
    log: Callable[[str], None] = print,
    **options,
) -> dict:
    """Write the formats into ``out_dir``; return per-format file, size, parity or error.

    ``calibration`` and ``parity_inputs`` are preprocessed float32 arrays in ``spec.shape``
    layout (calibration from training data only, never test data).
    """
    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval().to(memory_format=torch.contiguous_format)
    rows = parse_formats(formats)
    if any(f.int8 for f in rows) and calibration is None:
        raise EdgekdError("INT8 formats need calibration images", "pass training images for calibration")
    reference = None
    if parity_inputs is not None:
        with torch.no_grad():
            reference = model(torch.from_numpy(parity_inputs)).numpy()
    files: dict[str, Path] = {}
    results: dict[str, dict] = {}
    for fmt in rows:
        if fmt.exporter is None:
            continue
        try:
            path = _call_exporter(fmt, model, spec, out_dir, calibration, files, **options)
        except EdgekdError as exc:
            results[fmt.name] = {"status": "failed", "error": exc.message}
            log(f"  {fmt.name:12s} FAILED: {exc.message}")
            continue
        files[fmt.name] = Path(path)
        row = {"status": "ok", "file": Path(path).name, "bytes": Path(path).stat().st_size,
               "sha256": sha256_file(path), "runtime": fmt.runtime, "int8": fmt.int8}
        predictor = Predictor(path)
        row["input"] = predictor.in_spec.to_dict()
        row["output"] = predictor.out_spec.to_dict()
        if reference is not None:
            row["parity"] = parity(Path(path), reference, parity_inputs)
        results[fmt.name] = row
        par = row.get("parity", {})
        log(f"  {fmt.name:12s} {row['bytes'] / 1024:8.1f} KiB"
            + (f"  max|Δ| {par['max_abs_diff']:.2e}" if "max_abs_diff" in par else "")
            + (f"  top-1 agreement {100 * par['top1_agreement']:.1f}%" if "top1_agreement" in par else ""))
    return results
