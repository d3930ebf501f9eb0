"""Export the DFE encoder: ONNX fp32 / INT8 (ORT static QDQ) and TFLite fp32 / INT8.

Stop-gap until the project's generic exporter (``edgekd.convert``) is on main: it does
the same steps for this one model. The exported encoder takes a fixed search region:
float32 NCHW (N, 3, 31+2r, 31+2r), CIELAB scaled to [0, 1] (OpenCV 8-bit Lab / 255),
r = 6 by default (43×43 → 13×13×128 encodings). ONNX keeps the batch dynamic (all
points of a frame in one call); TFLite has batch 1 (the backend loops over points).

INT8 is calibrated on search regions cut around skin points of TRAINING-subject faces
(never the held-out faces the tracking error is measured on).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.errors import EdgekdError
from edgekd.track.preprocess import CROP, HALF, bgr_to_lab01, cv2_module, detect_faces


def calibration_regions(data, n: int = 256, radius: int = 6, seed: int = 0) -> np.ndarray:
    """(n, 3, S, S) float32 search regions from training-subject face images."""
    from edgekd.track.train import list_sources, split_subjects, _frames

    cv2 = cv2_module()
    train_files, _ = split_subjects(list_sources(data))
    rng = np.random.default_rng(seed)
    size = CROP + 2 * radius
    half = size // 2
    files = [train_files[i] for i in rng.permutation(len(train_files))]
    out = []
    for p in files:
        img = _frames(p, 1)[0]
        boxes = detect_faces(img, min_size=max(24, min(img.shape[:2]) // 10))
        if len(boxes) == 0:
            continue
        x, y, w, h = boxes[0]
        s = 160.0 / w
        lab = bgr_to_lab01(cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC))
        x, y, w, h = np.array([x, y, w, h]) * s
        for _ in range(4):
            cx = int(rng.uniform(x + 0.2 * w, x + 0.8 * w))
            cy = int(rng.uniform(y + 0.15 * h, y + 0.8 * h))
            if half <= cx < lab.shape[1] - half and half <= cy < lab.shape[0] - half:
                out.append(lab[cy - half : cy + half + 1, cx - half : cx + half + 1].transpose(2, 0, 1))
        if len(out) >= n:
            break
    if not out:
        raise EdgekdError("no face regions found for INT8 calibration", "point --data at face images")
    return np.ascontiguousarray(np.stack(out[:n]), dtype=np.float32)


def _encoder(model_path):
    from edgekd.models.checkpoint import load_model

    model, info = load_model(model_path)
    return getattr(model, "encoder", model).eval(), info


def export_onnx(encoder, path, size: int) -> Path:
    import torch

    x = torch.rand(2, 3, size, size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    prog = torch.onnx.export(encoder, (x,), dynamo=True, external_data=False, input_names=["regions"],
                             output_names=["encodings"], dynamic_shapes={"x": {0: batch}})
    prog.save(str(path))
    return Path(path)


def quantize_onnx(fp32_path, int8_path, calib: np.ndarray) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib[i : i + 16] for i in range(0, len(calib), 16))

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {"regions": b}

    pre = Path(int8_path).with_suffix(".pre.onnx")
    try:
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(int8_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    finally:
        pre.unlink(missing_ok=True)
    return Path(int8_path)


def export_tflite(encoder, path, size: int) -> Path:
    import litert_torch
    import torch

    m = litert_torch.convert(encoder, (torch.rand(1, 3, size, size),))
    m.export(str(path))
    return Path(path)


def quantize_tflite(fp32_path, int8_path, calib: np.ndarray) -> Path:
    from ai_edge_quantizer import quantizer, recipe

    q = quantizer.Quantizer(str(fp32_path))
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    from ai_edge_litert.interpreter import Interpreter

    sig = Interpreter(model_path=str(fp32_path)).get_signature_list()
    key = next(iter(sig))
    name = sig[key]["inputs"][0]
    res = q.calibrate({key: [{name: calib[i : i + 1]} for i in range(len(calib))]}, num_threads=1)
    q.quantize(res).export_model(str(int8_path), overwrite=True)
    return Path(int8_path)


def export_encoder(model_path, out_dir="export/dfe-encoder", data="../shared/data/faces", radius: int = 6,
                   calib_n: int = 256, formats=("torch", "onnx", "onnx-int8", "tflite", "tflite-int8"), log=print) -> dict:
    import torch

    from edgekd.models.checkpoint import save_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    enc, info = _encoder(model_path)
    size = CROP + 2 * radius
    calib = calibration_regions(data, calib_n, radius)
    files = {}
    if "torch" in formats:
        files["torch"] = save_model(out / "model.pt", enc, "dfe_encoder", meta={"source": str(model_path), **info.get("meta", {})})
    if "onnx" in formats or "onnx-int8" in formats:
        files["onnx"] = export_onnx(enc, out / "model.onnx", size)
        log(f"onnx → {files['onnx']}")
    if "onnx-int8" in formats:
        files["onnx-int8"] = quantize_onnx(out / "model.onnx", out / "model.int8.onnx", calib)
        log(f"onnx-int8 → {files['onnx-int8']}")
    if "tflite" in formats or "tflite-int8" in formats:
        files["tflite"] = export_tflite(enc, out / "model.tflite", size)
        log(f"tflite → {files['tflite']}")
    if "tflite-int8" in formats:
        files["tflite-int8"] = quantize_tflite(out / "model.tflite", out / "model.int8.tflite", calib)
        log(f"tflite-int8 → {files['tflite-int8']}")
    # parity on the calibration regions' centre encodings: how far each format is from torch
    with torch.inference_mode():
        ref = enc(torch.from_numpy(calib[:32])).numpy()
    from edgekd.track.backends import load_encoder

    parity = {}
    for name, f in files.items():
        if name == "torch":
            continue
        y = load_encoder(f)(calib[:32])
        parity[name] = float(np.abs(y - ref).max() / (np.abs(ref).max() + 1e-12))
    return {"files": {k: str(v) for k, v in files.items()}, "input": [None, 3, size, size], "radius": radius,
            "calibration_regions": len(calib), "max_rel_diff_vs_torch": parity}
