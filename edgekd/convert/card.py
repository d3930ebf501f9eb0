"""Model cards: ``card.json`` (machine-readable, what bench and the device apps read) and
``card.md`` (what a person reads), written from the same dictionary so they cannot disagree."""

from __future__ import annotations

from pathlib import Path

from edgekd.utils.io import atomic_write_bytes, read_json_checked, write_json


def _fmt_pct(v) -> str:
    return f"{v:.2f}" if isinstance(v, (int, float)) else "—"


def _usage(card: dict) -> str:
    pre = card.get("preprocess", {})
    size = pre.get("size", [32, 32])
    return f"""```python
import numpy as np, onnxruntime as ort                  # pip install "edgekd[device]"
mean, std = np.array({[round(m, 4) for m in pre.get('mean', [0, 0, 0])]}, np.float32), np.array({[round(s, 4) for s in pre.get('std', [1, 1, 1])]}, np.float32)
img = np.load("samples.npy")[:1]                        # uint8 (1, {size[0]}, {size[1]}, 3) RGB
x = ((img * {pre.get('pixel_scale', 1 / 255):.8f} - mean) / std).transpose(0, 3, 1, 2).astype(np.float32)
sess = ort.InferenceSession("model.int8.onnx")
print(sess.run(None, {{sess.get_inputs()[0].name: x}})[0].argmax(1))

from ai_edge_litert.interpreter import Interpreter      # full-integer TFLite takes int8
it = Interpreter("model.int8.tflite"); it.allocate_tensors()
i, o = it.get_input_details()[0], it.get_output_details()[0]
s, z = i["quantization"]; it.set_tensor(i["index"], np.clip(np.round(x / s + z), -128, 127).astype(np.int8))
it.invoke(); s, z = o["quantization"]; print(((it.get_tensor(o["index"]).astype(np.float32) - z) * s).argmax(1))
```"""


def render_markdown(card: dict) -> str:
    lines = [f"# {card.get('name', 'model')}", ""]
    if card.get("summary"):
        lines += [card["summary"], ""]
    model = card.get("model", {})
    if model:
        lines += ["## Model", "", "| | |", "| --- | --- |"]
        for k in ("arch", "params", "macs", "compression_factor", "compute_ratio", "config"):
            if k in model:
                lines.append(f"| {k.replace('_', ' ')} | {model[k]} |")
        lines.append("")
    data = card.get("data", {})
    if data:
        lines += ["## Data", "", f"- data set: {data.get('name')} — {data.get('provenance', {}).get('source', '')}",
                  f"- images: {data.get('train_images')} train / {data.get('val_images')} validation / "
                  f"{data.get('test_images')} test; classes: {', '.join(map(str, data.get('classes', [])))}", ""]
    training = card.get("training", {})
    if training:
        lines += ["## Training", "", f"- method: {training.get('method')}, seed {training.get('seed')}",
                  f"- hyperparameters: {training.get('hyperparameters')}",
                  f"- teacher: {training.get('teacher')}", ""]
    lines += _cost_lines(card.get("cost"))
    ref = card.get("reference", {})
    gate = card.get("gate", {})
    lines += ["## Formats", "",
              f"Accuracy on the {gate.get('split', 'test')} split with the runtime that runs each file; drop against "
              f"PyTorch fp32 ({_fmt_pct(ref.get('test_acc'))} %). Gate: ≤ {gate.get('threshold_pp')} pp → "
              f"**{'passed' if gate.get('passed') else 'FAILED'}**. {_kernels_sentence(gate.get('kernels'))}", "",
              "| format | file | KiB | test acc % | drop pp | top-1 agreement | max abs diff | input | gate |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for name, row in card.get("formats", {}).items():
        if row.get("status") != "ok":
            lines.append(f"| {name} | — | | | | | | failed: {row.get('error', '')[:120]} | |")
            continue
        par, inp = row.get("parity", {}), row.get("input", {})
        q = f" scale {inp['scale']:.6g} zp {inp['zero_point']}" if inp.get("scale") else ""
        agree = f"{100 * par['top1_agreement']:.2f} %" if "top1_agreement" in par else "—"
        lines.append(f"| {name} | {row['file']} | {row['bytes'] / 1024:.1f} | {_fmt_pct(row.get('test_acc'))} | "
                     f"{row.get('drop_pp', 0):+.2f} | {agree} | {par.get('max_abs_diff', float('nan')):.3g} | "
                     f"{inp.get('dtype')} {inp.get('shape')}{q} | {row.get('gate', '')} |")
        if row.get("reduce_range"):
            lines.append("|  | 7-bit weights (reduce_range): the exporting x86 CPU has no VNNI, where 8-bit weights saturate ONNX Runtime's U8S8 kernels | | | | | | | |")
        if row.get("calibration_choice"):
            choice = row["calibration_choice"]
            scored = ", ".join(f"{k} {100 * v['agreement']:.2f} % agreement, drop {v['drop_pp']:+.2f} pp"
                               for k, v in choice.items() if isinstance(v, dict))
            lines.append(f"|  | activation ranges: {row['calibration']} (on {choice['split']}, {choice['images']} "
                         f"images: {scored}) | | | | | | | |")
        if row.get("float_nodes"):
            lines.append(f"|  | kept in float: {', '.join(row['float_nodes'])} | | | | | | | |")
        if row.get("qat"):
            lines.append(f"|  | {_qat_sentence(row['qat'])} | | | | | | | |")
    lines += _robustness_lines(card.get("robustness"))
    lines += _kernel_check_lines(card.get("kernel_checks"))
    lines += _latency_lines(card.get("latency"))
    pre = card.get("preprocess", {})
    lines += ["", "## Input", "",
              f"float32 {pre.get('layout', 'NCHW')} {pre.get('shape')}, {pre.get('colour', 'RGB')}, "
              f"x = (pixel × {pre.get('pixel_scale', 1 / 255):.6g} − mean) / std with mean {pre.get('mean')} and std "
              f"{pre.get('std')}. Full-integer INT8 .tflite files take int8: q = round(x / scale) + zero_point "
              "(see the table).", "", "## Run it", "", _usage(card), ""]
    if card.get("command"):
        lines += ["## Produced by", "", f"`{card['command']}`", ""]
    return "\n".join(lines)


STAGES = {"data_s": "data", "teacher_s": "teacher", "ig_s": "IG maps", "student_s": "student training",
          "export_s": "export and gate", "total_s": "total"}


def _qat_sentence(qat: dict) -> str:
    """What the quantisation-aware fine-tune did for this file, and why."""
    ptq = qat["post-training"]
    where = f"on {qat['split']} ({qat['images']} images)"
    before = f"post-training {100 * ptq['agreement']:.2f} % agreement, drop {ptq['drop_pp']:+.2f} pp"
    status = qat["status"]
    if status in ("off", "not needed"):
        return "QAT off" if status == "off" else f"QAT not needed: {before} {where}, target {100 * qat['target_agreement']:.2f} %"
    if status in ("unavailable", "skipped", "failed"):
        return f"QAT {status}: {qat['reason']}; the post-training file ships ({before} {where})"
    after = qat["qat"]
    tried = (f"QAT ({qat['steps']} steps, {qat['seconds']:.0f} s, self-distillation from the float model) "
             f"{100 * after['agreement']:.2f} % agreement, drop {after['drop_pp']:+.2f} pp, against {before} {where}")
    if status == "shipped":
        return f"{tried} → the QAT file ships: its weights are the fine-tuned model's, its scales the post-training ones"
    return f"{tried} → {status}: the post-training file ships"


def _robustness_lines(rob: dict | None) -> list[str]:
    if not rob:
        return []
    names = list(rob["corruptions"])
    lines = ["", "## Robustness", "",
             f"Top-1 accuracy % on {rob['images']} evenly spaced {rob['split']} images, clean and under deterministic "
             f"corruptions generated from them ({rob['severity']}; seed {rob['seed']}): "
             + "; ".join(f"{k}: {v}" for k, v in rob["corruptions"].items())
             + ". Mean drop: the mean over corruptions of clean − corrupted.", "",
             "| file | clean | " + " | ".join(names) + " | mean drop pp |", "| --- |" + " ---: |" * (len(names) + 2)]
    for name, acc in rob["accuracy"].items():
        drop = sum(acc["clean"] - acc[c] for c in names) / len(names)
        lines.append(f"| {name} | {acc['clean']:.1f} | " + " | ".join(f"{acc[c]:.1f}" for c in names) + f" | {drop:.1f} |")
    return lines


def _kernels_sentence(kernels: dict | None) -> str:
    if not kernels:
        return "Measured with the kernels of the exporting machine (not recorded)."
    return (f"Measured with the {kernels.get('arch')} kernels of ONNX Runtime and LiteRT on {kernels.get('cpu')}: "
            "other CPUs (ARM) run other INT8 kernels, which can round differently (see the kernel checks).")


def _kernel_check_lines(checks: list | None) -> list[str]:
    """Runs of these very files on other kernels (``devices/arm64-emulated``): agreement with the gate's run."""
    if not checks:
        return ["", "Kernel checks: none recorded; `devices/arm64-emulated/check.py` runs these files on arm64 kernels."]
    lines = ["", "## Kernel checks", "",
             "The same files on other kernels against the gate's kind of kernels, on the same test images (top-1 "
             "agreement, largest logit difference, accuracy on both). Timings under emulation are not device timings "
             "and are not shown.", "",
             "| kernels | format | images | top-1 agreement | max abs logit diff | acc % there | acc % gate's kernels |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for check in checks:
        for fmt, r in check.get("formats", {}).items():
            lines.append(f"| {check['kernels']} | {fmt} | {r['images']} | {100 * r['top1_agreement']:.2f} % | "
                         f"{r['max_abs_diff']:.3g} | {_fmt_pct(r['acc_there'])} | {_fmt_pct(r['acc_here'])} |")
    return lines


def add_kernel_check(model_dir: str | Path, check: dict) -> dict:
    """Record a run of the files on other kernels in the card (replacing an earlier one of the same kernels)."""
    model_dir = Path(model_dir)
    card = read_json_checked(model_dir / "card.json", "model card", "give the folder edgekd export wrote")
    kept = [c for c in card.get("kernel_checks", []) if c.get("kernels") != check["kernels"]]
    card["kernel_checks"] = kept + [check]
    write_card(model_dir, card)
    return card


def _cost_lines(cost: dict | None) -> list[str]:
    """Wall time of each stage of the run that made the model, and where it ran."""
    if not cost or not cost.get("wall_s"):
        return []
    wall = cost["wall_s"]
    cells = [f"{label} {wall[k] / 60:.1f} min" for k, label in STAGES.items() if isinstance(wall.get(k), (int, float))]
    return ["## Cost", "", f"Wall time on {cost.get('machine') or 'an unrecorded CPU'} ({cost.get('cores')} cores, "
            f"{cost.get('device')}): " + ", ".join(cells) + ".", ""]


def _latency_lines(lat: dict | None) -> list[str]:
    """The student chosen for a latency budget: the budget, the shipped file's measurement, the candidates."""
    if not lat:
        return []
    shipped = lat.get("shipped") or {}
    if shipped.get("measured"):
        verdict = (f"shipped file measured again: p50 {shipped['p50_ms']:.3g} ms, p90 {shipped['p90_ms']:.3g} ms "
                   f"over {shipped['n']} calls → **{'met' if shipped['passed'] else 'NOT met'}**")
    else:
        verdict = shipped.get("note", "not exported: nothing to measure")
    lines = ["", "## Latency budget", "",
             f"Budget {lat['budget_ms']:g} ms ({lat['statistic']}, {lat['format']}, {lat['source']}); chosen "
             f"**{lat['chosen']}** ({lat['chosen_latency_ms']:.3g} ms); {verdict}.",
             f"Proxy runs ({lat['proxy']['method']}, {lat['proxy']['epochs']} epochs, {lat['proxy']['train_subset']} "
             f"images, scored on {lat['proxy']['scored_on']}) ranked the shortlist; on the latency–accuracy front: "
             f"{', '.join(lat.get('front', []))}.", "",
             "| candidate | params | M MACs | latency ms | proxy val % | |", "| --- | ---: | ---: | ---: | ---: | --- |"]
    rows = sorted(lat.get("candidates", []), key=lambda r: (r.get("latency_ms") is None, r.get("latency_ms") or 0))
    for r in rows:
        ms = f"{r['latency_ms']:.3g}" if r.get("latency_ms") is not None else r.get("status", "—")
        acc = f"{r['proxy_val_acc']:.2f}" if r.get("proxy_val_acc") is not None else ""
        tag = "chosen" if r["key"] == lat["chosen"] else ("paper's 4.12×" if r.get("paper_student") else "")
        lines.append(f"| {r['key']} | {r['params']:,} | {r['macs'] / 1e6:.1f} | {ms} | {acc} | {tag} |")
    return lines


def write_card(out_dir: str | Path, card: dict) -> None:
    out_dir = Path(out_dir)
    write_json(out_dir / "card.json", card)
    atomic_write_bytes(out_dir / "card.md", render_markdown(card).encode())
