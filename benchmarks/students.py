"""Reproduce benchmarks/students.md: students chosen by measured INT8 latency, not by parameter count.

    python benchmarks/students.py --part latency   # every candidate + both teachers, 3 interleaved bench runs (~15 min)
    python benchmarks/students.py --part budget    # compress --latency-budget-ms at half the 4.12× student's INT8 p50
    python benchmarks/students.py --part report    # join with the KD runs, table + front plot → students.md
    python benchmarks/students.py --part cpu --tag xeon-vnni   # the front's students again on another CPU → students/cpu-TAG.md

``latency`` calls :func:`edgekd.select.survey` (what ``edgekd students`` runs) on the whole candidate
grid plus the paper's MobileNetV2 teacher, in ONNX fp32, ONNX INT8 and TFLite INT8, one thread.
Accuracy comes from the experiment runs, all KD from the shipped airbench teacher at the cpu budget
(5,000 images, 6 epochs; the same seeds and split everywhere):

    edgekd experiment ablation --data D --root runs/experiments-strong   # 4.12×, MobileNetV2 ×0.5, ResNet-32
    edgekd experiment students --data D --root runs/experiments-strong   # the latency-chosen shapes
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
OUT = HERE / "students"
RUNS = ROOT / "runs" / "experiments-strong"
TEACHER = {"arch": "mobilenetv2_cifar", "kwargs": {}, "family": "teacher"}  # the paper's: the ratio is against it
SHIPPED_TEACHER = {"arch": "airbench", "kwargs": {}, "family": "teacher-shipped"}  # the one every student here distils from
FORMATS = ["onnx", "onnx-int8", "tflite-int8"]


def part_latency(runs: int, min_time: float, repeats: int) -> None:
    """The whole grid and both teachers, `repeats` interleaved survey runs in a row: the tables show the first run's
    cells, the ratios their median and range over the runs (a ratio moves with the machine's state between runs)."""
    from edgekd.select.candidates import enumerate_candidates
    from edgekd.select.survey import survey

    grid = [{"arch": c.arch, "kwargs": c.arguments, "family": c.family} for c in enumerate_candidates()]
    results = [survey(formats=FORMATS, candidates=grid + [TEACHER, SHIPPED_TEACHER], threads=1, runs=runs,
                      min_time_s=min_time, out=ROOT / "runs" / "students-bench", log=print) for _ in range(repeats)]
    result = results[0]
    result["repeats"] = [_p50s(res["rows"]) for res in results]
    result["repeat_warnings"] = [res.get("warnings", []) for res in results]
    OUT.mkdir(exist_ok=True)
    result["command"] = (f"python benchmarks/students.py --part latency --runs {runs} --min-time {min_time} "
                         f"--repeats {repeats}")
    (OUT / "latency.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {OUT / 'latency.json'}")


def _p50s(rows: list[dict]) -> dict[str, dict[str, float | None]]:
    """Candidate key → format → p50 ms (None where the format has no number) of one survey run."""
    return {r["key"]: {f: r[f].get("p50_ms") for f in FORMATS} for r in rows}


def _ratios(lat: dict, teacher_key: str, key: str) -> list[float]:
    """Teacher ORT fp32 p50 ÷ student ORT INT8 p50, once per interleaved run (each ratio within one run)."""
    return [rep[teacher_key]["onnx"] / rep[key]["onnx-int8"] for rep in lat.get("repeats") or [_p50s(lat["rows"])]
            if rep[teacher_key]["onnx"] and rep[key]["onnx-int8"]]


def _median_ratio(lat: dict, teacher_key: str, key: str) -> float:
    v = _ratios(lat, teacher_key, key)
    return statistics.median(v) if v else float("nan")


def _ratio_text(lat: dict, teacher_key: str, key: str) -> str:
    """'11.7× (11.6–11.9, 3 runs)': the median ratio with its range over the interleaved runs."""
    v = _ratios(lat, teacher_key, key)
    if not v:
        return "—"
    return f"{statistics.median(v):.1f}×" + (f" ({min(v):.1f}–{max(v):.1f}, {len(v)} runs)" if len(v) > 1 else "")


def part_budget() -> None:
    """`edgekd compress --latency-budget-ms` at half the paper student's ONNX INT8 p50 measured in part latency."""
    import subprocess
    import time

    lat = json.loads((OUT / "latency.json").read_text())
    paper = next(r for r in lat["rows"] if r.get("paper_student"))
    budget = round(paper["onnx-int8"]["p50_ms"] / 2, 4)
    import shutil

    out = ROOT / "runs" / "students-budget"
    shutil.rmtree(out, ignore_errors=True)  # compress reuses finished stages; the wall time is of a whole fresh run
    cmd = [sys.executable, "-m", "edgekd", "compress", "--data", str(ROOT.parent / "shared" / "data" / "cifar10-png.zip"),
           "--method", "kd", "--latency-budget-ms", str(budget), "--formats", "onnx-int8,tflite-int8",
           "--threads", "2", "--out", str(out)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    result = {"command": "edgekd " + " ".join(cmd[3:]).replace(str(ROOT) + "/", "").replace(str(ROOT.parent), ".."),
              "budget_ms": budget,
              "paper_student_p50_ms": paper["onnx-int8"]["p50_ms"], "exit_code": r.returncode,
              "wall_s": round(wall, 1), "log_tail": (r.stdout + r.stderr)[-3000:],
              "latency": report.get("latency"), "student": {k: report.get("student", {}).get(k) for k in
                                                            ("arch", "kwargs", "params", "macs", "val_acc", "test_acc")},
              "export": report.get("export")}
    (OUT / "budget.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "log_tail"}, indent=1)[:3000])


def _cell(r: dict, fmt: str) -> str:
    """A latency table cell: p50 (p90) ms over n calls, or why the format has no number."""
    c = r[fmt]
    return f"{c['p50_ms']:.3f} ({c['p90_ms']:.3f}) n={c['n']}" if c.get("status") == "ok" else c.get("status", "—")


def part_cpu(tag: str, runs: int, min_time: float) -> None:
    """The students of the front (those with KD runs) and the teacher, measured again on this machine; the same ratio
    table beside the first CPU's, accuracies from students/front.json (the weights do not change with the CPU)."""
    from edgekd.select.survey import survey

    first = json.loads((OUT / "latency.json").read_text())
    front = {e["key"]: e for e in json.loads((OUT / "front.json").read_text())}
    by_key = {r["key"]: r for r in first["rows"]}
    grid = [{"arch": by_key[k]["arch"], "kwargs": by_key[k]["kwargs"], "family": by_key[k]["family"]} for k in front]
    result = survey(formats=FORMATS, candidates=grid + [TEACHER], threads=1, runs=runs, min_time_s=min_time,
                    out=ROOT / "runs" / f"students-bench-{tag}", log=print)
    result["command"] = f"python benchmarks/students.py --part cpu --tag {tag} --runs {runs} --min-time {min_time}"
    (OUT / f"latency-{tag}.json").write_text(json.dumps(result, indent=1))
    rows = {r["key"]: r for r in result["rows"]}
    teacher = next(r for r in result["rows"] if r["family"] == "teacher")
    t_first = next(r for r in first["rows"] if r["family"] == "teacher")

    def ratio(t, r):
        ok = r["onnx-int8"].get("status") == "ok" and t["onnx"].get("status") == "ok"
        return t["onnx"]["p50_ms"] / r["onnx-int8"]["p50_ms"] if ok else float("nan")

    m, m1 = result["system"], first["system"]
    lines = [f"# The students' front on a second CPU: {m.get('cpu', '?')}", "",
             f"`{result['command']}` (machine quiet; {m.get('cpu', '?')}, {m.get('cores', '?')} cores, one thread, batch 1, "
             f"`edgekd bench`'s protocol, every file in one interleaved run). Accuracies are the KD runs of "
             f"`students.md` (front.json); the first CPU's columns are from `students/latency.json` ({m1.get('cpu', '?')}). "
             "Latency cells: p50 (p90) ms over n calls. Both ratios are measured within one run on one machine; "
             "absolute times of the two machines are not comparable.", ""]
    for w in result.get("warnings", []):
        lines.append(f"> {w}")
    lines += ["", f"| student | test acc % (n) | ONNX INT8 ms | TFLite INT8 ms | teacher ORT fp32 ÷ student ORT INT8 | "
              f"same ratio on {m1.get('cpu', '?')} |", "|---|---:|---:|---:|---:|---:|"]
    order = sorted(front, key=lambda k: rows[k]["onnx-int8"].get("p50_ms") or 1e9)
    for k in order:
        e, r = front[k], rows[k]
        lines.append(f"| {k}{' **(paper 4.12×)**' if r.get('paper_student') else ''} | {e['mean']:.2f} ± {e['sd']:.2f} "
                     f"({len(e['acc'])}) | {_cell(r, 'onnx-int8')} | {_cell(r, 'tflite-int8')} | {ratio(teacher, r):.1f}× | "
                     f"{ratio(t_first, by_key[k]):.1f}× |")
    paper = next(k for k in front if rows[k].get("paper_student"))
    best = min((k for k in front if front[k]["mean"] >= front[paper]["mean"] and rows[k]["onnx-int8"].get("status") == "ok"),
               key=lambda k: rows[k]["onnx-int8"]["p50_ms"])
    lines += ["", f"Teacher (the paper's MobileNetV2) on this CPU: ONNX fp32 {_cell(teacher, 'onnx')}, ONNX INT8 "
              f"{_cell(teacher, 'onnx-int8')}, TFLite INT8 {_cell(teacher, 'tflite-int8')}. The fastest student at or above "
              f"the 4.12× student's mean accuracy: **{best}** → **{ratio(teacher, rows[best]):.1f}×** here "
              f"({ratio(t_first, by_key[best]):.1f}× on the first CPU; goal ≥ 6×).", ""]
    (OUT / f"cpu-{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _accuracies(rows: list[dict]) -> dict[str, dict]:
    """Candidate key → {"acc": {seed: test accuracy}, "cpu": {seed: machine}} of every KD run (ablation and students
    families), kept in students/accuracy.json so that the front survives the runs/ folder of the machine that trained
    them. Runs found under RUNS are matched to the latency rows by (params, MACs) and merged in; a seed already recorded
    keeps its first value, and a run here that differs from it is reported."""
    from edgekd.utils.system import cpu_model

    path = OUT / "accuracy.json"
    store: dict[str, dict] = json.loads(path.read_text()) if path.exists() else {}
    by_shape = {(r["params"], r["macs"]): r["key"] for r in rows if not r["family"].startswith("teacher")}
    cpu = cpu_model()
    for family in ("ablation", "students"):
        for rep_path in sorted((RUNS / family).glob("kd_*_seed*/report.json")):
            if "-ig" in rep_path.parent.name or "-at" in rep_path.parent.name:
                continue
            rep = json.loads(rep_path.read_text())
            s = rep["student"]
            key = by_shape.get((s["params"], s["macs"]))
            if rep["method"] != "kd" or key is None:
                continue
            entry = store.setdefault(key, {"params": s["params"], "macs": s["macs"], "acc": {}, "cpu": {}})
            seed = str(rep["seed"])
            if seed in entry["acc"] and abs(entry["acc"][seed] - s["test_acc"]) > 1e-9:
                print(f"note: {key} seed {seed}: recorded {entry['acc'][seed]} %, this machine's run {s['test_acc']} % "
                      "(kept the recorded value)")
                continue
            entry["acc"].setdefault(seed, s["test_acc"])
            entry["cpu"].setdefault(seed, cpu)
    path.write_text(json.dumps(store, indent=1, sort_keys=True))
    return {k: {int(seed): a for seed, a in v["acc"].items()} for k, v in store.items()}


def part_report() -> None:
    from edgekd.distill.stats import compare, holm, summarize

    lat = json.loads((OUT / "latency.json").read_text())
    rows = lat["rows"]
    acc = _accuracies(rows)
    teacher = next(r for r in rows if r["family"] == "teacher")
    paper = next(r for r in rows if r.get("paper_student"))
    paper_acc = acc[paper["key"]]
    def ratio(e: dict) -> float:  # median over the interleaved runs of teacher ORT fp32 ÷ student ORT INT8
        return _median_ratio(lat, teacher["key"], e["key"])
    table, points = [], []
    for r in rows:
        a = acc.get(r["key"])
        entry = {**r, "acc": a}
        if a and not r["family"].startswith("teacher"):
            seeds = sorted(set(a) & set(paper_acc))
            entry["summary"] = summarize(list(a.values()))
            if r is not paper and len(seeds) >= 2:
                entry["vs_paper"] = compare([a[k] for k in seeds], [paper_acc[k] for k in seeds], paired=True)
            points.append(entry)
        table.append(entry)

    compared = [e for e in points if e.get("vs_paper")]
    for e, adj in zip(compared, holm([e["vs_paper"].p for e in compared])):
        e["vs_paper"].p_holm = adj

    m = lat["system"]
    lines = ["# Students chosen by measured latency", "",
             f"`{lat['command']}` then `python benchmarks/students.py --part report`. Machine: "
             f"{m.get('cpu', '?')} ({m.get('cores', m.get('cpu_count', '?'))} cores), one thread, batch 1, "
             "`edgekd bench`'s protocol (cold call apart, warm-up, every file in one interleaved run in shuffled "
             "blocks). Latency cells: p50 (p90) ms over n calls. Weights untrained, calibration on random inputs: "
             "latency depends on the graph, not the weights. Accuracy: CIFAR-10 test, KD from the shipped airbench "
             "teacher at the cpu budget (5,000 images, 6 epochs), mean ± sd over seeds (n), the same seeds and split "
             "as the ablation; Δ vs the paper's 4.12× student paired by seed (Holm over the rows). The KD runs: "
             "`edgekd experiment ablation --data D --root runs/experiments-strong` (4.12×, MobileNetV2 ×0.5, "
             "ResNet-32; 5 seeds), `edgekd experiment students --data D --root runs/experiments-strong --shard "
             "i/2` (the other shapes; 3 seeds, 18 runs, 45–395 s each on one core) and `edgekd experiment students "
             "--data D --root runs/experiments-strong --variants airbench-x0.25,airbench-x0.375,airbench-x0.5 --seeds 5 "
             "--shard i/2` (the airbench widths; 5 seeds, 15 runs, 1–2 min each). Every seed's test accuracy and the CPU "
             "that trained it are kept in `students/accuracy.json` (the runs were made in different sessions; a seed "
             "means the same split, subset and initialisation on every machine).", ""]
    for w in lat.get("warnings", []):
        lines.append(f"> {w}")
    lines += ["", "## The accuracy–latency front (students with KD runs)", "",
              "| student | params | M MACs | ONNX INT8 ms | TFLite INT8 ms | teacher ORT fp32 ÷ student ORT INT8 | "
              "test acc % (n) | Δ vs 4.12× [95% CI], p |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for e in sorted(points, key=lambda e: e["onnx-int8"].get("p50_ms") or 1e9):
        s = e["summary"]
        vs = e.get("vs_paper")
        vs_txt = (f"{vs.mean_difference:+.2f} [{vs.diff_ci[0]:+.2f}, {vs.diff_ci[1]:+.2f}], {vs.test} p {vs.p:.2g} "
                  f"(Holm {vs.p_holm:.2g})"
                  if vs else ("— (the reference)" if e is not None and e.get("paper_student") else ""))
        lines.append(f"| {e['key']}{' **(paper 4.12×)**' if e.get('paper_student') else ''} | {e['params']:,} | "
                     f"{e['macs'] / 1e6:.1f} | {_cell(e, 'onnx-int8')} | {_cell(e, 'tflite-int8')} | "
                     f"{_ratio_text(lat, teacher['key'], e['key'])} | {s.mean:.2f} ± {s.sd:.2f} ({s.n}) | {vs_txt} |")
    base = next(e for e in points if e.get("paper_student"))
    better = [e for e in points if e["summary"].mean >= base["summary"].mean and e["onnx-int8"].get("status") == "ok"]
    best = min(better, key=lambda e: e["onnx-int8"]["p50_ms"])
    n_runs = len(lat.get("repeats") or [None])
    lines += ["", f"Teacher (the paper's MobileNetV2, 2.24 M parameters, 88 M MACs) in ONNX Runtime fp32: "
              f"{teacher['onnx']['p50_ms']:.3f} ms p50 in the first run. The paper's 4.12× student in ORT INT8: "
              f"{base['onnx-int8']['p50_ms']:.3f} ms → **{_ratio_text(lat, teacher['key'], base['key'])}**. The fastest "
              f"student at or above its mean accuracy: **{best['key']}**, {best['onnx-int8']['p50_ms']:.3f} ms → "
              f"**{_ratio_text(lat, teacher['key'], best['key'])}** (goal ≥ 6×). Every ratio is taken within one "
              f"interleaved run; the median and range are over {n_runs} such runs in a row, the table's ms cells are "
              "the first run's."]
    shipped = next((r for r in rows if r["family"] == "teacher-shipped"), None)
    if shipped and shipped["onnx"].get("status") == "ok":
        lines += ["", f"Against the teacher these students actually distil from (the shipped airbench, "
                  f"{shipped['params'] / 1e6:.2f} M parameters, {shipped['macs'] / 1e6:.0f} M MACs, 93.4 % test): ORT "
                  f"fp32 {shipped['onnx']['p50_ms']:.3f} ms p50 in the first run (its own ORT INT8: "
                  f"{shipped['onnx-int8'].get('p50_ms', float('nan')):.3f} ms), so {best['key']} in ORT INT8 is "
                  f"**{_ratio_text(lat, shipped['key'], best['key'])}** faster than it."]
    lines += [""]
    close = [e for e in points if e.get("vs_paper") and e["vs_paper"].diff_ci[0] <= 0 <= e["vs_paper"].diff_ci[1]
             and e["onnx-int8"].get("status") == "ok" and e["onnx-int8"]["p50_ms"] < base["onnx-int8"]["p50_ms"]]
    paired = best.get("vs_paper")
    if best is base:
        verdict = (f"- **At this budget the paper's truncated 4.12× student is the most accurate student tried** "
                   f"({base['summary'].mean:.2f} %), so no student reaches its accuracy at a lower latency and the "
                   f"same-runtime ratio at equal accuracy stays {ratio(base):.1f}×: the ≥ 6× goal "
                   "is **not met** here.")
    else:
        verdict = (f"- **The ≥ 6× goal is {'met' if ratio(best) >= 6 else 'not met'}**: "
                   f"{best['key']} is {ratio(best):.1f}× faster than the teacher in the same "
                   f"runtime (the 4.12× student: {ratio(base):.1f}×) at "
                   f"{best['summary'].mean:.2f} ± {best['summary'].sd:.2f} % vs {base['summary'].mean:.2f} ± "
                   f"{base['summary'].sd:.2f} %" + (f" (paired by seed: {paired.mean_difference:+.2f} pp "
                   f"[{paired.diff_ci[0]:+.2f}, {paired.diff_ci[1]:+.2f}], {paired.test} p {paired.p:.2g}, Holm "
                   f"{paired.p_holm:.2g}, n = {paired.n_a} seeds)" if paired else "") + "." + (" "
                   "The airbench students are the shipped teacher's own network with every width scaled: dense 3×3 "
                   "convolutions (INT8 GEMMs run near peak where depthwise ones do not), a resolution halved by every "
                   "group (10–33 M MACs) and a whitening first layer set from the images' patch statistics — at 6 "
                   "epochs on 5,000 images that matters more than capacity." if best["family"] == "airbench" else "") + (
                       " Every truncated, width-scaled MobileNetV2 and ResNet student sits below the 4.12× student: "
                       "among the paper's kind of shapes the short schedule favours the wide full-resolution blocks "
                       "that also cost the latency." if all(e["summary"].mean < base["summary"].mean for e in points
                                                            if e["family"] != "airbench" and e is not base) else ""))
    lines += ["## Reading", "", verdict,
              "- This is a short-budget front, not a verdict on the shapes: with full schedules published CIFAR-10 models "
              "rank them differently (MobileNetV2 ×0.5 reaches 92.9 % without distillation; here "
              f"{next(e for e in points if e['key'] == 'mobilenetv2_cifar-stage2_stride1-width_mult0.5')['summary'].mean:.1f} %)."]
    half_res = next(e for e in points if e["key"] == "student-blocks_removed5-early_width1-stage2_stride2")
    if close:
        lines.append("- Faster students whose difference from it is not separable (the 95 % CI of the paired "
                     "difference reaches 0; n = 3 seeds, so these intervals are wide): " + "; ".join(
                         f"{e['key']} {e['vs_paper'].mean_difference:+.2f} pp [{e['vs_paper'].diff_ci[0]:+.2f}, "
                         f"{e['vs_paper'].diff_ci[1]:+.2f}] at {e['onnx-int8']['p50_ms']:.3f} ms "
                         f"({ratio(e):.1f}×)" for e in close) + ".")
    lines += ["- Latency follows MACs, not parameters: the 4.12× student has 4.1× fewer parameters than the teacher "
              f"but {base['macs'] / teacher['macs'] * 100:.0f} % of its MACs; halving the resolution from stage 2 "
              f"(`stage2_stride=2`) keeps every parameter and cuts ONNX INT8 latency "
              f"{base['onnx-int8']['p50_ms'] / half_res['onnx-int8']['p50_ms']:.1f}× "
              f"(and {base['summary'].mean - half_res['summary'].mean:.1f} pp of accuracy at this budget). "
              "ONNX Runtime's INT8 kernels barely speed up the narrowest "
              "ResNets (width 8 ≈ width 16 in ms), LiteRT's XNNPACK does; the right format depends on the candidate, "
              "which is why the budget names one.",
              f"- Latencies are {n_runs} interleaved run(s) in a row on a 2-core cloud CPU (cells: the first run's p50 "
              "with p90 beside it and N calls; ratios: median and range over the runs); absolute numbers do not "
              "transfer to a Pi — bench the candidates there (`edgekd students "
              "--export-only`, `edgekd bench`, `--latency-table`).", ""]
    lines += ["## Every candidate (latency only)", "",
              "| candidate | family | params | M MACs | ONNX fp32 ms | ONNX INT8 ms | INT8 KiB | TFLite INT8 ms |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(table, key=lambda r: r["onnx-int8"].get("p50_ms") or 1e9):
        kib = (r["onnx-int8"].get("bytes") or 0) / 1024
        lines.append(f"| {r['key']}{' (paper 4.12×)' if r.get('paper_student') else ''} | {r['family']} | "
                     f"{r['params']:,} | {r['macs'] / 1e6:.1f} | {_cell(r, 'onnx')} | {_cell(r, 'onnx-int8')} | {kib:.0f} | "
                     f"{_cell(r, 'tflite-int8')} |")
    (OUT / "front.json").write_text(json.dumps(
        [{k: e[k] for k in ("key", "family", "params", "macs", "onnx", "onnx-int8", "tflite-int8")} |
         {"acc": e["acc"], "mean": e["summary"].mean, "sd": e["summary"].sd} for e in points], indent=1))
    _plot(points, base, OUT / "front.png")
    if (OUT / "budget.json").exists():
        b = json.loads((OUT / "budget.json").read_text())
        L, st = b.get("latency") or {}, b["student"]
        sh = L.get("shipped") or {}
        lines += ["", "## `--latency-budget-ms` at half the 4.12× student's INT8 latency", "",
                  f"`{b['command']}` (wall {b['wall_s']:.0f} s, exit code {b['exit_code']}): budget {b['budget_ms']:g} ms = "
                  f"half of the paper student's {b['paper_student_p50_ms']:.3f} ms ONNX INT8 p50 above."]
        if L:
            lines += ["", "| proxied candidate | params | M MACs | ONNX INT8 ms at selection | proxy val % |",
                      "|---|---:|---:|---:|---:|"]
            for c in L["candidates"]:
                if c.get("proxy_val_acc") is not None:
                    lines.append(f"| {c['key']}{' **(chosen)**' if c['key'] == L['chosen'] else ''} | {c['params']:,} | "
                                 f"{c['macs'] / 1e6:.1f} | {c['latency_ms']:.3f} | {c['proxy_val_acc']:.2f} |")
            under = sum(1 for c in L["candidates"] if c.get("latency_ms") is not None and c["latency_ms"] <= b["budget_ms"])
            lines += ["", f"{under} of {len(L['candidates'])} candidates were under the budget. Shipped: {st['arch']} "
                      f"{st['kwargs']} ({st['params']:,} parameters, {st['macs'] / 1e6:.1f} M MACs), KD, test "
                      f"{st['test_acc']:.2f} % (val {st['val_acc']:.2f} %); its exported ONNX INT8 file measured again: "
                      f"p50 {sh.get('p50_ms', float('nan')):.3f} ms, p90 {sh.get('p90_ms', float('nan')):.3f} ms over "
                      f"{sh.get('n')} calls → **{'meets' if sh.get('passed') else 'does NOT meet'}** the budget. "
                      f"Export gate: {'passed' if (b.get('export') or {}).get('gate_passed') else 'see the card'}."
                      + "".join(f" The re-measurement warned (the load before it is the run's own distillation): {w}."
                              for w in sh.get("warnings", [])),
                      "", "The proxy (plain training, 2 epochs on 2,000 images, validation) is a coarse ranking, not a "
                      "prediction: compare the shipped student's test accuracy with the front above at the same "
                      "latency. More proxy epochs or candidates (`proxy_epochs`, `proxy_candidates`) buy a better "
                      "choice with time."]
    lines += ["", "Plot: `students/front.png` (accuracy vs ONNX INT8 and TFLite INT8 latency; error bars = sd over "
              "seeds). Data: `students/latency.json`, `students/front.json`, `students/accuracy.json` (every seed, with the CPU "
              "that trained it).", ""]
    for other in sorted(OUT.glob("cpu-*.md")):  # --part cpu: the same students measured on another machine
        lines += [f"The same front measured on another CPU: `students/{other.name}`.", ""]
    if (OUT / "airbench-check.md").exists():
        lines += ["The seed-0 check that decided to run the airbench students (Intel Xeon latencies): "
                  "`students/airbench-check.md`.", ""]
    (HERE / "students.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _plot(points, base, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, fmt in zip(axes, ("onnx-int8", "tflite-int8")):
        for fam, marker in (("truncated", "o"), ("mobilenetv2", "s"), ("resnet", "D"), ("airbench", "^")):
            pts = [e for e in points if e["family"] == fam and e[fmt].get("status") == "ok"]
            ax.errorbar([e[fmt]["p50_ms"] for e in pts], [e["summary"].mean for e in pts],
                        yerr=[e["summary"].sd for e in pts], fmt=marker, label=fam, capsize=3)
            for e in pts:
                ax.annotate(e["key"].replace("resnet_cifar-", "").replace("student-", "").replace("mobilenetv2_cifar-", "mnv2-")
                            .replace("airbench-width_mult", "airbench ×"),
                            (e[fmt]["p50_ms"], e["summary"].mean), fontsize=6, xytext=(3, 3), textcoords="offset points")
        if base[fmt].get("status") == "ok":
            ax.scatter([base[fmt]["p50_ms"]], [base["summary"].mean], s=220, facecolors="none", edgecolors="k",
                       label="paper's 4.12×")
        ax.set_xscale("log")
        ax.set_xlabel(f"{fmt} latency p50, ms (1 thread, batch 1)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("CIFAR-10 test accuracy % (KD, cpu budget)")
    axes[1].legend(fontsize=8, loc="upper right")  # TFLite puts every airbench student far left of that corner
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["latency", "budget", "report", "cpu"], required=True)
    ap.add_argument("--tag", default="second", help="--part cpu: names the machine in the output files")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3, help="--part latency: interleaved survey runs in a row")
    args = ap.parse_args()
    if args.part == "latency":
        part_latency(args.runs, args.min_time, args.repeats)
    elif args.part == "budget":
        part_budget()
    elif args.part == "cpu":
        part_cpu(args.tag, args.runs, args.min_time)
    else:
        part_report()


if __name__ == "__main__":
    main()
