"""Reproduce benchmarks/latency.md: the teacher (PyTorch eager fp32) vs the 4.12× student in every format.

    python benchmarks/latency.py                     # export to runs/latency-models, bench, write the table
    python benchmarks/latency.py --skip-export       # bench the models exported before
    python benchmarks/latency.py --report-only       # rewrite latency.md from latency.json

Weights are untrained (fixed seeds): latency does not depend on their values, only on the
architecture and the format. Exports: ONNX (torch.onnx dynamo exporter), ONNX INT8 (ORT
static QDQ, per-channel, uint8 activations, MinMax on random-normal batches), TFLite fp32
(litert-torch), TFLite INT8 (ai-edge-quantizer's static int8 recipe on the fp32 .tflite).
The benchmark itself is `edgekd bench` in a subprocess, as a user runs it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

CALIBRATION_BATCHES = 16  # random-normal images: enough for MinMax ranges of an untrained net


def export_all(work: Path) -> dict[str, Path]:
    import numpy as np
    import torch

    from edgekd.models import create_model
    from edgekd.models.checkpoint import save_model

    torch.set_num_threads(1)  # the machine is shared
    torch.manual_seed(0)
    teacher = create_model("mobilenetv2_cifar").eval()
    student = create_model("student", cf=4.12).eval()
    sample = torch.randn(1, 3, 32, 32)
    out = {}
    for name, model, arch in [("teacher", teacher, "mobilenetv2_cifar"), ("student-4.12x", student, "student")]:
        d = work / name
        d.mkdir(parents=True, exist_ok=True)
        save_model(d / "model.pt", model, arch)
        torch.onnx.export(model, (sample,), str(d / "model.onnx"), dynamo=True, external_data=False,
                          input_names=["input"], output_names=["logits"])  # fmt: skip
        out[f"{name}/model.pt"] = d / "model.pt"
        out[f"{name}/model.onnx"] = d / "model.onnx"
    d = work / "student-4.12x"

    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)  # fmt: skip

    class RandomImages(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.batches = iter([{"input": rng.standard_normal((1, 3, 32, 32)).astype(np.float32)} for _ in range(CALIBRATION_BATCHES)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(
        str(d / "model.onnx"), str(d / "model.int8.onnx"), RandomImages(),
        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
    )  # fmt: skip
    out["student-4.12x/model.int8.onnx"] = d / "model.int8.onnx"

    import litert_torch

    litert_torch.convert(student, (sample,)).export(str(d / "model.tflite"))
    out["student-4.12x/model.tflite"] = d / "model.tflite"
    try:
        out["student-4.12x/model.int8.tflite"] = tflite_int8(d / "model.tflite", d / "model.int8.tflite")
    except Exception as exc:  # noqa: BLE001 - report, bench the rest
        print(f"TFLite INT8 export failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    return out


def tflite_int8(fp32: Path, dest: Path) -> Path:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    signatures = Interpreter(model_path=str(fp32)).get_signature_list()
    key = next(iter(signatures))
    input_name = signatures[key]["inputs"][0]
    rng = np.random.default_rng(0)
    calibration = {key: [{input_name: rng.standard_normal((1, 3, 32, 32)).astype(np.float32)} for _ in range(CALIBRATION_BATCHES)]}
    qt = quantizer.Quantizer(str(fp32), recipe.static_wi8_ai8())
    result = qt.quantize(qt.calibrate(calibration))
    dest.unlink(missing_ok=True)
    result.export_model(str(dest))
    return dest


def run_bench(work: Path, threads: str, runs: int, min_time: float, script_command: str) -> Path:
    models = [work / "teacher" / "model.pt", work / "teacher" / "model.onnx", work / "student-4.12x"]
    out = HERE / "latency.json"
    cmd = ["python", "-m", "edgekd", "bench", *(str(m.relative_to(ROOT)) if m.is_relative_to(ROOT) else str(m) for m in models),
           "--threads", threads, "--runs", str(runs), "--min-time", str(min_time), "--warmup", "20",
           "--json", "benchmarks/latency.json", "--csv", "benchmarks/latency.csv", "--plot", "benchmarks/latency.png"]  # fmt: skip
    print("$", " ".join(cmd), flush=True)
    subprocess.run([sys.executable, *cmd[1:]], cwd=ROOT, check=False)
    run = json.loads(out.read_text())
    run["command"], run["bench_command"] = script_command, " ".join(cmd)
    out.write_text(json.dumps(run, indent=2) + "\n")
    return out


def cpu_flags() -> str:
    try:
        flags = set(next(l for l in open("/proc/cpuinfo") if l.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        return "flags unknown"
    return ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") if f in flags) or "no AVX2"


def _ms(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def write_markdown(result_json: Path) -> Path:
    run = json.loads(result_json.read_text())
    sysrec, before, after, settings = run["system"], run["before"], run["after"], run["settings"]
    ok = [r for r in run["results"] if r["status"] == "ok"]

    def stat(label_end: str, threads: int, key: str = "p50_ms") -> float | None:
        return next((r["stats"][key] for r in ok if r["label"].endswith(label_end) and r["threads"] == threads), None)

    def ratio(a, b) -> str:
        return f"{a / b:.2f}×" if a and b else "—"

    load = before["loadavg"][0]
    lines = [
        "# Latency: teacher (PyTorch eager) vs the 4.12× student in every format",
        "",
        f"**This is an x86 server CPU ({sysrec['cpu']}, {sysrec['cores']} cores, {cpu_flags()}), not a Raspberry Pi.**",
        "Absolute milliseconds do not transfer to a Pi or a Jetson; ratios between formats measured in one run are the",
        "useful part, and even those shift on ARM (NEON / dot-product kernels instead of AVX-512 VNNI). On the device:",
        "`edgekd bench runs/latency-models/teacher/model.pt runs/latency-models/student-4.12x --device raspberry-pi-5`.",
        "",
        f"- Reproduce: `{run.get('command', 'python benchmarks/latency.py')}` — exports the models to `runs/latency-models/`",
        f"  (about a minute), then runs `{run.get('bench_command', 'edgekd bench ...')}`.",
        "- Models: teacher = CIFAR MobileNetV2 (2.24 M parameters, 88.0 M MACs); student = `create_model(\"student\", cf=4.12)`",
        "  (543 k parameters, 58.7 M MACs). **Weights are untrained** (fixed seeds): latency depends on architecture and",
        "  format, not on weight values. Exports: ONNX (dynamo exporter), ONNX INT8 (ORT static QDQ, per-channel, uint8",
        "  activations, MinMax on 16 random-normal images), TFLite fp32 (litert-torch), TFLite INT8 (ai-edge-quantizer",
        "  `static_wi8_ai8` on the fp32 .tflite; int8 in and out, fed through its own input scale/zero-point).",
        "- Input: batch 1, 3×32×32, random normal (no card.json). PyTorch models took their input shape from the ONNX export.",
        f"- Protocol: session creation and first (cold) call reported apart; {settings['warmup']} warm-up calls; then all",
        f"  {len(run['results'])} model × thread rows take turns in blocks of {settings['block']} calls (shuffled each round, one",
        f"  untimed call per block) until each row has ≥ {settings['runs']} calls and ≥ {settings['min_time_s']:g} s timed, so N differs per row.",
        "",
        "## Read this first: the machine was oversubscribed",
        "",
        f"The 1-minute load average was {load:.1f} before and {after['loadavg'][0]:.1f} after the run, on {sysrec['cores']} cores: other jobs",
        "were using the CPU the whole time. A call is slowed whenever the scheduler takes its core away, so the median",
        "and upper percentiles measure contention as much as the model, and longer calls (the teacher) are hit more",
        "often than short ones. The **minimum** over a few hundred calls is the best available estimate of the",
        "uncontended cost here, and it agrees with figures measured on this machine when idle (DESIGN.md: student",
        "ORT fp32 1.4 ms, ORT INT8 0.65–0.80, LiteRT fp32 1.3, LiteRT INT8 0.69, teacher eager 7.3, teacher ORT 2.2).",
        "So the tables give both; **use the min-based speed-ups for this run**, and measure p50/p90 on an idle device.",
        "",
    ]
    for t in settings["threads"]:
        base_p50, base_min = stat("teacher/model.pt", t), stat("teacher/model.pt", t, "min_ms")
        lines += [
            f"## {t} thread{'s' if t > 1 else ''}",
            "",
            "| model | format | runtime | size | load ms | cold ms | min ms | p50 ms | p90 ms | p99 ms | mean ± sd ms | N | speed-up (min) | speed-up (p50) |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in run["results"]:
            if r["threads"] != t:
                continue
            if r["status"] != "ok":
                lines.append(f"| {r['label']} | {r['format']} | {r['runtime']} | | | | failed: {r['error']} | | | | | | | |")
                continue
            s = r["stats"]
            lines.append(
                f"| {r['label']} | {r['format']} | {r['runtime']}:{r['backend']} | {r['size_bytes'] / 1e6:.2f} MB | "
                f"{r['create_ms']:.0f} | {_ms(r['cold_ms'])} | **{_ms(s['min_ms'])}** | {_ms(s['p50_ms'])} | {_ms(s['p90_ms'])} | "
                f"{_ms(s['p99_ms'])} | {_ms(s['mean_ms'])} ± {_ms(s['sd_ms'])} | {s['n']} | "
                f"**{ratio(base_min, s['min_ms'])}** | {ratio(base_p50, s['p50_ms'])} |"
            )
        lines += ["", f"Speed-up = teacher in PyTorch eager at {t} thread{'s' if t > 1 else ''} ÷ this row.", ""]
    lines += [
        "## Same-runtime ratios (the honest compression gain), from the minimum",
        "",
        "| threads | teacher ÷ student, PyTorch eager | teacher ÷ student, ORT fp32 | ORT fp32 ÷ ORT INT8 (student) | LiteRT fp32 ÷ LiteRT INT8 (student) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for t in settings["threads"]:
        m = lambda label: stat(label, t, "min_ms")  # noqa: E731
        lines.append(
            f"| {t} | {ratio(m('teacher/model.pt'), m('student-4.12x/model.pt'))} | "
            f"{ratio(m('teacher/model.onnx'), m('student-4.12x/model.onnx'))} | "
            f"{ratio(m('student-4.12x/model.onnx'), m('student-4.12x/model.int8.onnx'))} | "
            f"{ratio(m('student-4.12x/model.tflite'), m('student-4.12x/model.int8.tflite'))} |"
        )
    lines += [
        "",
        "Parameters are not compute: the student has 4.12× fewer parameters but only 1.5× fewer MACs (its early,",
        "high-resolution blocks are kept), which is what the same-runtime ratios reflect.",
        "",
        "## Why the 2-thread rows are unreliable here",
        "",
        "With both cores already busy, a second thread mostly adds waiting. PyTorch eager at 2 threads is",
        "pathological here (medians 100+ ms, cold calls of seconds): its OpenMP workers spin-wait at every parallel",
        "region, and when the scheduler parks one of them the other spins until it returns. A separate check (the",
        "teacher alone in its own process, 60 calls, same load; not part of this script) gave a median of ~130 ms at",
        "2 threads against ~16 ms at 1 thread, so this is the machine, not the interleaving. ONNX Runtime and LiteRT degrade far less. Do not read the",
        "2-thread rows as a threading speed-up; on an idle 4-core Pi, measure 1 and 4 threads.",
        "",
        "![latency distribution per model](latency.png)",
        "",
        "## Machine record",
        "",
        f"- CPU: {sysrec['cpu']} ({cpu_flags()}), {sysrec['cores']} cores visible (affinity {sysrec['cpu_affinity']}), "
        f"{sysrec['arch']}, {sysrec['bits']}-bit, {sysrec['os']}, Python {sysrec['python']}",
        "- Runtimes: " + ", ".join(f"{k} {v}" for k, v in sysrec["runtimes"].items() if isinstance(v, str) and k != "litert_delegates")
        + "; LiteRT with its built-in XNNPACK delegate",
        f"- ONNX Runtime providers available: {', '.join(sysrec['runtimes'].get('onnxruntime_providers') or [])} (CPU used)",
        f"- Governor: {before.get('governor') or 'not exposed (VM)'}; temperature: "
        f"{', '.join(f'{k} {v:.0f} °C' for k, v in (before.get('temperature_c') or {}).items()) or 'not exposed (VM)'}; "
        f"throttle flags: {before.get('throttled') or 'n/a (no vcgencmd: not a Pi)'}",
        f"- Load average (1, 5, 15 min) before: {[round(x, 2) for x in before['loadavg']]}, after: {[round(x, 2) for x in after['loadavg']]}",
        f"- Run started {before['time']}, wall time {run['wall_s']:.0f} s; peak RSS of the benchmark process (all 14 sessions",
        f"  loaded together, torch included): {run['peak_rss_mb']:.0f} MB",
        f"- Harness warnings: {'; '.join(run['warnings']) or 'none'}",
        "",
        "Raw data: `latency.json` (settings, system record, every call's latency), `latency.csv` (one row per model).",
    ]
    md = HERE / "latency.md"
    md.write_text("\n".join(lines) + "\n")
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "latency-models", help="where the exported models go")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--min-time", type=float, default=3.0)
    ap.add_argument("--skip-export", action="store_true", help="bench the models exported before")
    ap.add_argument("--report-only", action="store_true", help="rewrite latency.md from latency.json")
    args = ap.parse_args()
    if args.report_only:
        print(f"wrote {write_markdown(HERE / 'latency.json')}")
        return
    if not args.skip_export:
        t0 = time.time()
        for label, path in export_all(args.work).items():
            print(f"exported {label}: {path.stat().st_size / 1e6:.2f} MB")
        print(f"export took {time.time() - t0:.0f} s")
    command = " ".join(["python benchmarks/latency.py", *sys.argv[1:]])
    result = run_bench(args.work, args.threads, args.runs, args.min_time, command)
    md = write_markdown(result)
    print(f"wrote {md}")


if __name__ == "__main__":
    main()
