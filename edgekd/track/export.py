"""Export the DFE encoder: ONNX fp32 / INT8 (ORT static QDQ) and TFLite fp32 / INT8.

Uses the project's generic exporter (``edgekd.convert.export_model``). The exported encoder takes a fixed search region:
float32 NCHW (N, 3, C+2r, C+2r), CIELAB scaled to [0, 1] (OpenCV 8-bit Lab / 255), C = the encoder's context
(31, or 47 normalised), r = 3 by default → (N, D, 7, 7) encodings, D = the last conv's width. ONNX keeps the batch dynamic (all
points of a frame in one call); TFLite is stored with batch 1 and the LiteRT backend resizes it to the number of points.

INT8 is calibrated on search regions cut around skin points of TRAINING-subject faces
(never the held-out faces the tracking error is measured on).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.errors import EdgekdError
from edgekd.track.preprocess import CROP, HALF, bgr_to_lab01, cv2_module, detect_faces


def calibration_regions(data, n: int = 256, radius: int = 3, seed: int = 0, context: int = CROP) -> np.ndarray:
    """(n, 3, S, S) float32 search regions (S = context + 2·radius) from training-subject face images."""
    from edgekd.track.train import list_sources, split_subjects, _frames

    cv2 = cv2_module()
    train_files, _ = split_subjects(list_sources(data))
    rng = np.random.default_rng(seed)
    size = context + 2 * radius
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


def _onnx_node_names(path) -> tuple[list[str], list[str]]:
    """(the photometric normalisation's nodes, the last Conv and what follows it) of an exported encoder.

    The normalisation (fixed box convolutions, a division, a square root) stays in float, because
    8-bit steps of a local standard deviation would undo what it is for; its nodes are found by
    the module scope torch.onnx records (``norm``). The last conv + ReLU is kept in float by the
    mixed file (its output is the encoding whose fine differences give the sub-pixel position).
    """
    import onnx

    def scopes(node):
        for prop in node.metadata_props:
            if prop.key == "pkg.torch.onnx.name_scopes":
                return prop.value
        return ""

    nodes = list(onnx.load(str(path)).graph.node)
    norm = [nd for nd in nodes if "'norm'" in scopes(nd)]
    rest = [nd for nd in nodes if nd not in norm]
    convs = [i for i, nd in enumerate(rest) if nd.op_type == "Conv"]
    if not convs:
        raise EdgekdError(f"{path} has no Conv node: not a DFE encoder")
    return [nd.name for nd in norm], [nd.name for nd in rest[convs[-1] :]]


def export_encoder(model_path, out_dir="export/dfe-encoder", data="../shared/data/faces", radius: int = 3,
                   calib_n: int = 256, formats="onnx,onnx-int8,tflite,tflite-int8", mixed: bool = True, log=print) -> dict:
    """Export with the project exporter (``edgekd.convert.export_model``), INT8 calibrated on face regions.

    TFLite INT8 uses PT2E: ai-edge-quantizer's static recipe clipped the encodings here
    (output range 0..3.0 where they reach 7.6; 38 % RMS error). Its activations use min–max
    observers: the default histogram observer also clips, and added 0.43 px instead of 0.29 px
    pooled tracking error on the ground-truth sequences. ``mixed`` also writes
    ``model.int8-mixed.onnx`` and ``model.int8-mixed.tflite`` with the last conv + ReLU kept in
    float (its output is the encoding whose fine differences give the sub-pixel position).
    """
    from edgekd.convert import InputSpec, export_model
    from edgekd.convert.onnx import quantize_onnx_int8
    from edgekd.models.checkpoint import save_model

    from edgekd.convert.tflite import export_tflite_int8

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    enc, info = _encoder(model_path)
    context = enc.context
    size = context + 2 * radius
    calib = calibration_regions(data, calib_n, radius, context=context)
    spec = InputSpec(shape=(1, 3, size, size), pixel_scale=1 / 255, colour="CIELAB (OpenCV 8-bit Lab)", name="regions",
                     output_name="encodings", dynamic_batch=True,
                     extra={"radius": radius, "crop": CROP, "context": context, "norm_radius": enc.norm_radius})
    save_model(out / "model.pt", enc, "dfe_encoder", meta={"source": str(model_path), **info.get("meta", {})})
    wanted = [f.strip() for f in formats.split(",")]
    # the project exporter does fp32 (and INT8 of a plain encoder); a normalising encoder's INT8 files are made
    # here so the normalisation can stay in float
    own_int8 = enc.norm_radius > 0
    first = ",".join(f for f in wanted if not (own_int8 and f.endswith("int8")))
    results = export_model(enc, spec, out, formats=first, calibration=calib, parity_inputs=calib[:32],
                           log=log, tflite_int8_method="pt2e", tflite_activation_observer="minmax")
    files = {"torch": out / "model.pt", **{k: out / r["file"] for k, r in results.items() if r.get("status") == "ok"}}
    norm_nodes, last_nodes = _onnx_node_names(files["onnx"]) if "onnx" in files else ([], [])
    float_norm = ("norm",) if own_int8 else ()
    last_block = tuple(f"features.{i}" for i in range(len(enc.features) - 3, len(enc.features)))  # conv, BN, ReLU
    if own_int8 and "onnx-int8" in wanted and "onnx" in files:
        files["onnx-int8"] = quantize_onnx_int8(files["onnx"], out / "model.int8.onnx", calib, input_name="regions",
                                                exclude_nodes=norm_nodes)
    if own_int8 and "tflite-int8" in wanted:
        files["tflite-int8"] = export_tflite_int8(enc, spec, out / "model.int8.tflite", calib, method="pt2e",
                                                  float_modules=float_norm, activation_observer="minmax")
    if mixed and "onnx" in files:
        files["onnx-int8-mixed"] = quantize_onnx_int8(files["onnx"], out / "model.int8-mixed.onnx", calib,
                                                      input_name="regions", exclude_nodes=norm_nodes + last_nodes)
    if mixed and "tflite-int8" in files:
        files["tflite-int8-mixed"] = export_tflite_int8(enc, spec, out / "model.int8-mixed.tflite", calib, method="pt2e",
                                                        float_modules=float_norm + last_block, activation_observer="minmax")
    from edgekd.track.backends import load_encoder

    import torch

    with torch.inference_mode():
        ref = enc(torch.from_numpy(calib[:32])).numpy()
    parity = {}
    for name, f in files.items():
        if name != "torch":
            y = load_encoder(f)(calib[:32])
            parity[name] = float(np.sqrt(((y - ref) ** 2).mean() / (ref**2).mean()))
    failed = {k: r["error"] for k, r in results.items() if r.get("status") != "ok"}
    return {"files": {k: str(v) for k, v in files.items()}, "input": [None, 3, size, size], "radius": radius, "context": context,
            "dim": enc.dim, "calibration_regions": len(calib), "rel_rms_vs_torch": parity, "failed": failed}


def write_card(out_dir, export_info: dict, train_meta: dict, tracking: dict | None = None) -> Path:
    """card.json + card.md next to the exported files: what the encoder is, how it was made, how good."""
    from edgekd.utils.io import atomic_write_bytes, sha256_file, write_json
    from edgekd.utils.system import machine_record

    out = Path(out_dir)
    files = {}
    for name, f in export_info["files"].items():
        p = Path(f)
        files[name] = {"file": p.name, "bytes": p.stat().st_size, "sha256": sha256_file(p)}
    card = {
        "model": "dfe-encoder",
        "paper": "Deep Feature Encodings, arXiv 2405.04943",
        "input": {"shape": export_info["input"], "dtype": "float32", "layout": "NCHW", "context": export_info.get("context", CROP),
                  "meaning": "CIELAB = OpenCV 8-bit Lab / 255, search region C+2r with context C = %d (31 + the normalisation's "
                             "margin) and r = %d" % (export_info.get("context", CROP), export_info["radius"])},
        "output": {"shape": [None, export_info.get("dim", 128), 2 * export_info["radius"] + 1, 2 * export_info["radius"] + 1],
                   "meaning": "encoding of every 31×31 crop in the region (crop centre = region centre + (j−r, i−r))"},
        "files": files,
        "int8": {"calibration": f"{export_info['calibration_regions']} search regions around skin points of TRAINING-subject faces",
                 "onnx": "onnxruntime quantize_static, QDQ, per-channel int8 weights, QUInt8 activations, MinMax "
                         "(model.int8-mixed.onnx: the same with the last conv + ReLU left in float)",
                 "tflite": "litert-torch PT2E, symmetric per-channel int8 weights, int8 activations (min–max observers); int8 input/output tensors "
                           "(model.int8-mixed.tflite: the last conv + ReLU left in float)"},
        "rel_rms_vs_torch": export_info["rel_rms_vs_torch"],
        "training": train_meta,
        "tracking": tracking or {},
        "machine": machine_record(),
    }
    write_json(out / "card.json", card)
    atomic_write_bytes(out / "card.md", render_card_md(card).encode())
    return out / "card.md"


def render_card_md(card: dict) -> str:
    radius = (card["output"]["shape"][-1] - 1) // 2
    n_out = 2 * radius + 1
    lines = [
        "# DFE encoder (deep feature encodings for skin-feature tracking)",
        "",
        f"Input: float32 NCHW {card['input']['shape']} — CIELAB (OpenCV 8-bit Lab / 255) search region of "
        f"{card['input'].get('context', CROP)} + 2·{radius} px (the encoder normalises its input itself when its context exceeds 31). "
        f"Output: (N, {card['output']['shape'][1]}, {n_out}, {n_out}), the encoding of every 31×31 crop in the region.",
        "Use: `edgekd track VIDEO --points x,y --encoder THIS_FOLDER/model.int8-mixed.onnx` or "
        "`create_tracker('dfe', encoder=...)`. ONNX has a dynamic batch; TFLite is stored with batch 1 and resized to the number of points. "
        "Both encode every point of a frame in one call. `edgekd heartrate` picks the fastest file that passes the INT8 tracking gate below.",
        "",
        "| file | bytes | sha256 (first 16) | relative RMS difference vs torch (32 face regions) |",
        "|---|---|---|---|",
    ]
    for name, f in card["files"].items():
        d = card["rel_rms_vs_torch"].get(name)
        lines.append(f"| {f['file']} | {f['bytes']:,} | {f['sha256'][:16]} | {'reference' if d is None else f'{d:.4f}'} |")
    lines += ["", "INT8: " + card["int8"]["calibration"] + ". ONNX: " + card["int8"]["onnx"] + ". TFLite: " + card["int8"]["tflite"] + ".",
              "", "Training: " + ", ".join(f"{k}={v}" for k, v in card["training"].items()) + "."]
    tracking = card.get("tracking") or {}
    if tracking:
        gate = card.get("int8_gate") or {}
        lines += ["", "Tracking error on the ground-truth sequences (see benchmarks/tracking.md). INT8 gate: at most "
                  f"{gate.get('limit_px', 0.1)} px mean error added over float, paired per point-frame where float tracks "
                  "(95 % cluster-bootstrap CI over sequences; in brackets the difference of overall means, failures included):", "",
                  "| file (runtime) | mean px | median px | p95 px | failure rate | INT8 gate |", "|---|---|---|---|---|---|"]
        for k, s in tracking.items():
            g = gate.get("files", {}).get(k.split(" ")[0])
            verdict = "" if g is None else (f"{'pass' if g['passes'] else 'FAIL'} {g['added_px']:+.3f} px "
                                            f"[{g['ci95_px'][0]:+.3f}, {g['ci95_px'][1]:+.3f}] ({g['pooled_added_px']:+.3f})")
            lines.append(f"| {k} | {s['mean_px']:.3f} | {s['median_px']:.3f} | {s['p95_px']:.3f} | {s['failure_rate']:.3f} | {verdict} |")
    for check in card.get("kernel_checks", []):
        lines += ["", f"Checked on {check['kernels']} against {check['against']} ({check['video']}, the same start "
                  "points; `devices/arm64-emulated/check.py`): tracked positions there against here.", "",
                  "| file | point-frames compared | max px | mean px | lost here | lost there |", "|---|---|---|---|---|---|"]
        for name, t in check["files"].items():
            lines.append(f"| {name} | {t['compared']} of {t['point_frames']} | {_px(t['max_px'])} | {_px(t['mean_px'])} | "
                         f"{t['lost_x86']} | {t['lost_arm64']} |")
        if check.get("decoded_frames"):
            d = check["decoded_frames"]
            lines.append(f"\nThe decoded video frames themselves differ there ({100 * d['fraction_differing']:.1f} % of pixel "
                         f"values, by at most {d['max_level_diff']} levels): part of the difference is the decoder's, not the encoder's.")
    return "\n".join(lines) + "\n"


def _px(v) -> str:
    return "—" if v is None else f"{v:.3g}"


def record_kernel_check(out_dir, check: dict) -> Path:
    """Put a run of the encoder files on other kernels (``devices/arm64-emulated/check.py``) into the card.
    A later check of the same kernels replaces the earlier one's rows of the files it measured and keeps the
    others (each row carries the command that measured it)."""
    from edgekd.utils.io import atomic_write_bytes, read_json_checked, write_json

    out = Path(out_dir)
    card = read_json_checked(out / "card.json", "DFE encoder card", "give the folder `edgekd track export` wrote")
    earlier = [c for c in card.get("kernel_checks", []) if c.get("kernels") == check["kernels"]]
    if earlier:
        check = {**check, "files": {**earlier[0].get("files", {}), **check["files"]}}
    card["kernel_checks"] = [c for c in card.get("kernel_checks", []) if c.get("kernels") != check["kernels"]] + [check]
    write_json(out / "card.json", card)
    atomic_write_bytes(out / "card.md", render_card_md(card).encode())
    return out / "card.md"


def record_tracking(out_dir, results: dict, limit_px: float = 0.1) -> Path | None:
    """Put ``edgekd track eval`` results for this folder's encoders into its card, with the INT8 gate.

    ``results`` is the eval's results.json; rows are matched by file name. Returns card.md, or None
    when the folder has no card.
    """
    from edgekd.utils.io import atomic_write_bytes, read_json, write_json

    out = Path(out_dir)
    if not (out / "card.json").exists():
        return None
    card = read_json(out / "card.json")
    names = {f["file"] for f in card["files"].values()}
    tracking = dict(card.get("tracking") or {})
    for label, r in results["methods"].items():
        parts = label.split(" ")  # "dfe <dir>/<file> (<runtime>)"
        if len(parts) >= 3 and parts[0] == "dfe" and Path(parts[1]).parent.name == out.name and Path(parts[1]).name in names:
            tracking[f"{Path(parts[1]).name} {parts[2]}"] = {**r["overall"], "fps": r.get("fps")}
    files = dict((card.get("int8_gate") or {}).get("files") or {})
    for label, g in (results.get("int8_vs_float") or {}).items():
        parts = label.split(" ")
        if Path(parts[1]).parent.name == out.name and Path(parts[1]).name in names:
            files[Path(parts[1]).name] = {"added_px": round(g["added_px"], 4), "ci95_px": [round(c, 4) for c in g["ci95_px"]],
                                          "pooled_added_px": round(g["pooled_added_px"], 4),
                                          "passes": bool(g["added_px"] <= limit_px)}
    card["tracking"] = tracking
    card["int8_gate"] = {"limit_px": limit_px, "files": files,
                         "measure": "mean error added over the float encoder, paired per point-frame, on the point-frames "
                                    "float tracks (≤ 5 px, not lost); 95 % cluster-bootstrap CI over sequences; pooled_added_px = difference "
                                    "of the overall means, failures included"}
    write_json(out / "card.json", card)
    atomic_write_bytes(out / "card.md", render_card_md(card).encode())
    return out / "card.md"

