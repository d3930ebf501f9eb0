"""Export table for the quick CIFAR-10 KD+IG student: format, size, test accuracy, drop vs
fp32, batch-1 median latency with 1 thread; plus the measurement behind the TFLite INT8
quantiser choice (ai-edge-quantizer vs litert-torch PT2E: validation/test accuracy and latency).

    python benchmarks/quick_cifar10.py            # trains and exports export/cifar10-quick-kd-ig/
    python benchmarks/export_cifar10.py           # this table

Writes benchmarks/export_cifar10.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main() -> None:
    import torch

    from edgekd.bench import run_benchmark
    from edgekd.convert.runners import Predictor
    from edgekd.convert.spec import InputSpec
    from edgekd.convert.tflite import export_tflite_int8
    from edgekd.data import load_dataset
    from edgekd.distill.config import CompressConfig
    from edgekd.distill.pipeline import make_splits
    from edgekd.models.checkpoint import load_model
    from edgekd.utils.system import machine_record

    ap = argparse.ArgumentParser()
    ap.add_argument("--export", default="export/cifar10-quick-kd-ig")
    ap.add_argument("--run", default="runs/quick-cifar10/kd+ig")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--min-time", type=float, default=3.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    export = Path(args.export)
    card = json.loads((export / "card.json").read_text())
    report = json.loads((Path(args.run) / "report.json").read_text())
    cfg = CompressConfig(**report["config"])
    data = load_dataset(cfg.data, show_progress=False)
    splits = make_splits(data, cfg)
    train_idx, val_idx = splits.train, splits.val_idx
    calib = data.train.images[np.random.default_rng(cfg.split_seed).choice(train_idx, cfg.calib_images, replace=False)]
    spec = InputSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in card["preprocess"].items()
                        if k in ("shape", "layout", "pixel_scale", "mean", "std", "colour", "name", "output_name")})
    student, _ = load_model(Path(args.run) / "student.pt")

    def acc(path, images, labels):
        return 100 * float((Predictor(path)(spec.preprocess(images)).argmax(1) == labels).mean())

    with tempfile.TemporaryDirectory() as tmp:
        alts = {}
        for method in ("ai-edge-quantizer", "pt2e"):
            p = Path(tmp) / f"{method}.int8.tflite"
            export_tflite_int8(student, spec, p, spec.preprocess(calib), fp32_path=export / "model.tflite", method=method)
            alts[method] = p
        files = [export / card["formats"][f]["file"] for f in card["formats"] if card["formats"][f]["status"] == "ok"]
        bench = run_benchmark([Path(args.run) / "student.pt", *files, *alts.values()], threads=[1],
                              runs=args.runs, min_time_s=args.min_time, input_shape="1,3,32,32")
        lat = {Path(r.path).name: r.stats for r in bench.results if r.ok}
        choice = {}
        for method, p in alts.items():
            choice[method] = {
                "val_acc": acc(p, data.train.images[val_idx], data.train.labels[val_idx]),
                "test_acc": acc(p, data.test.images, data.test.labels),
                "p50_ms": lat.get(p.name, {}).get("p50_ms"), "bytes": p.stat().st_size,
            }
    ref = card["reference"]
    rows = [{"format": "torch (fp32, eager)", "bytes": (Path(args.run) / "student.pt").stat().st_size,
             "test_acc": ref["test_acc"], "drop_pp": 0.0, **{k: lat.get("student.pt", {}).get(k) for k in ("p50_ms", "p90_ms", "min_ms")}}]
    for f, row in card["formats"].items():
        if row["status"] != "ok":
            rows.append({"format": f, "error": row.get("error")})
            continue
        rows.append({"format": f + (f" ({row['method']})" if row.get("method") else ""), "bytes": row["bytes"],
                     "test_acc": row["test_acc"], "drop_pp": row["drop_pp"],
                     "agreement": row["parity"].get("top1_agreement"),
                     **{k: lat.get(row["file"], {}).get(k) for k in ("p50_ms", "p90_ms", "min_ms")}})
    out = {"machine": machine_record(), "bench_system": bench.system, "bench_warnings": bench.warnings,
           "runs_per_model": args.runs, "rows": rows, "tflite_int8_choice": choice, "card": str(export / "card.json")}
    (HERE / "export_cifar10.json").write_text(json.dumps(out, indent=2, default=str) + "\n")

    def f(v, spec=".2f"):
        return format(v, spec) if isinstance(v, (int, float)) else "—"

    md = ["# Export of the quick CIFAR-10 student (KD+IG, 4.12×)", "",
          "Produced by `python benchmarks/quick_cifar10.py` (trains and runs `edgekd compress ... --method kd+ig "
          "--export`) then `python benchmarks/export_cifar10.py`.", "",
          f"Machine: {out['machine']['cpu']}, {out['machine']['cores']} cores, {out['machine']['os']} — an x86 server "
          "CPU, not a Pi. Latency: batch 1, 1 thread, all files interleaved in one run by `edgekd bench`, "
          f"≥ {args.runs} timed calls each; read p50 and min side by side (close together means the machine was quiet, as it was for this run).", "",
          "Accuracy: the full official test split (10,000 images), each file run by its own runtime (ONNX Runtime, "
          "ai-edge-litert). INT8 calibration: 256 training images. Drop = PyTorch fp32 − format, in points.", "",
          "| format | size KiB | test acc % | drop pp | top-1 agreement | p50 ms | p90 ms | min ms |",
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if "error" in r:
            md.append(f"| {r['format']} | failed: {r['error']} | | | | | | |")
            continue
        agree = f(100 * r["agreement"]) + " %" if r.get("agreement") is not None else "—"
        md.append(f"| {r['format']} | {r['bytes'] / 1024:.0f} | {f(r['test_acc'])} | {f(r['drop_pp'], '+.2f')} | {agree} | "
                  f"{f(r.get('p50_ms'), '.3f')} | {f(r.get('p90_ms'), '.3f')} | {f(r.get('min_ms'), '.3f')} |")
    md += ["", "## TFLite INT8: ai-edge-quantizer or PT2E?", "",
           "Both full-integer files from the same fp32 model and the same 256 calibration images. The exporter keeps "
           "the one with the better **validation** accuracy (never test); this table shows both, test included, "
           "to justify that rule.", "",
           "| quantiser | val acc % | test acc % | p50 ms | size KiB |", "| --- | ---: | ---: | ---: | ---: |"]
    for m, c in choice.items():
        md.append(f"| {m} | {f(c['val_acc'])} | {f(c['test_acc'])} | {f(c['p50_ms'], '.3f')} | {c['bytes'] / 1024:.0f} |")
    (HERE / "export_cifar10.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
