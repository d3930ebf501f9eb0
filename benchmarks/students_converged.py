"""Students trained to convergence on a CPU: what each minute buys, and what `--preset cpu` ships.

    python benchmarks/students_converged.py --part curve --archs airbench_x0_5 --methods student,kd --epochs 8,16
    python benchmarks/students_converged.py --part tune --epochs 8 --temperatures 1,2,4  # KD's T (--alphas, --batch-sizes) on validation
    python benchmarks/students_converged.py --part teacher --teacher-ls 0  # an airbench teacher without label smoothing
    python benchmarks/students_converged.py --part teacher --teacher-epochs 32   # a teacher trained twice as long
    python benchmarks/students_converged.py --part targets --epochs 8 --teachers shipped,PATH --teacher-tta 0,1
    python benchmarks/students_converged.py --part candidate --teacher PATH --teacher-tta 1 --seeds 0
    python benchmarks/students_converged.py --part ship --seeds 0,1,2    # the README's CIFAR-10 command, exported
    python benchmarks/students_converged.py --part init --epochs 8 --lr-scales 0.1,0.3   # start from the teacher
    python benchmarks/students_converged.py --part wider --widths 48,128,128   # the preset on a wider airbench
    python benchmarks/students_converged.py --part latency               # teacher ORT fp32 vs shipped INT8, interleaved
    python benchmarks/students_converged.py --part tta                   # the shipped students with TTA (reported)
    python benchmarks/students_converged.py --part teacher-speed         # KD's teacher pass: one batch vs chunks
    python benchmarks/students_converged.py --part report                # students_converged.md + curve.png

Every run is the product's own command, ``edgekd compress --preset cpu --data D`` (curve runs add
``--student-arch A --method M --epochs E --no-export``), in its own folder under runs/converged/, so
an interrupted part resumes where it stopped and a finished run is never repeated. Each finished
run's report (test accuracy scored once, validation accuracy, the wall time of every stage, the
CPU) is merged into benchmarks/students_converged/runs.json, which survives the machine.
Nothing else may run on the machine while a part runs: wall time is part of the result.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "cifar10-png.zip"
OUT = HERE / "students_converged"
RUNS = ROOT / "runs" / "converged"


def _load(name: str = "runs.json") -> dict:
    """One of this benchmark's JSON files (the run records by default), empty before its first run."""
    p = OUT / name
    return json.loads(p.read_text()) if p.exists() else {}


# Runs of their own sections, kept off the accuracy-against-time curve
NOT_CURVE = ("ship-", "tune-", "probe-", "init-", "wider-", "targets-", "candidate-")


def _teacher_targets(r: dict) -> str:
    """online | cached (records made before the setting existed were online)."""
    return r["hyperparameters"].get("teacher_targets") or ("cached" if "--teacher-targets cached" in r["command"]
                                                          else "online")


def _teacher_name(r: dict) -> str:
    """The teacher a run distilled from: the shipped one, or the run folder of one `--part teacher` trained."""
    words = r["command"].split()
    return Path(words[words.index("--teacher") + 1]).parent.name if "--teacher" in words else "shipped"


def _init(r: dict) -> str:
    """How the student started: random | teacher (records made before the setting existed started at random)."""
    return r.get("student_init") or "random"


def _preset_start() -> str:
    """How the cpu preset as it is now starts its student (auto: from the teacher, which airbench_x0_5 allows)."""
    from edgekd.distill.config import resolve_config

    return "random" if resolve_config("cpu").student_init == "random" else "teacher"


def _method(r: dict) -> str:
    return r["method"] + (" (cached targets)" if r["method"] != "student" and _teacher_targets(r) == "cached" else "")


def _save(records: dict) -> None:
    OUT.mkdir(exist_ok=True)
    (OUT / "runs.json").write_text(json.dumps(records, indent=1, sort_keys=True))


def _relative(path: str) -> str:
    """A path under the repository as the repository names it (records are read on other machines)."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(path)


def _run(key: str, args: list[str], data: str) -> dict:
    """One `edgekd compress --preset cpu` run (resumed if interrupted) and the record kept of it."""
    records = _load()
    if key in records:
        print(f"{key}: done before ({records[key]['test_acc']:.2f} %)")
        return records[key]
    out = RUNS / key
    cmd = ["edgekd", "compress", "--preset", "cpu", "--data", data, "--out", str(out), *args]
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    record = _record(json.loads((out / "report.json").read_text()), cmd, wall)
    records = _load()
    records[key] = record
    _save(records)
    print(f"{key}: test {record['test_acc']:.2f} %, {record['timings']['total_s'] / 60:.1f} min", flush=True)
    return record


def _record(rep: dict, cmd: list[str], wall: float) -> dict:
    """What runs.json keeps of one run's report.json."""
    s = rep["student"]
    record = {
        "command": " ".join(cmd).replace(str(ROOT) + "/", "").replace(str(ROOT.parent) + "/", "../"), "arch": s["arch"], "params": s["params"],
        "macs": s["macs"], "method": rep["method"], "epochs": rep["hyperparameters"]["epochs"], "seed": rep["seed"],
        "val_acc": s["val_acc"], "test_acc": s["test_acc"], "best_epoch": s["best_epoch"],
        "history": [{k: h.get(k) for k in ("epoch", "seconds", "val_acc")} for h in s["history"]],
        "timings": rep["timings"], "process_wall_s": round(wall, 1), "cpu": rep["machine"]["cpu"],
        "teacher_test_acc": (rep.get("teacher") or {}).get("test_acc"),
        "ig": {**rep["ig"], "cache": _relative(rep["ig"]["cache"])} if rep.get("ig") else None,
        "hyperparameters": {**rep["hyperparameters"], "lr_scale": rep["config"].get("lr_scale", 0.0)},
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    record["student_init"] = (s.get("init") or {}).get("from", "random")
    if record["student_init"] == "teacher":
        record["student_init_val_acc"] = s["init"]["val_acc"]
    if rep.get("export"):
        fmts = rep["export"]["formats"]
        record["export"] = {"gate_passed": rep["export"]["gate_passed"], "dir": _relative(rep["export"]["dir"]),
                            **{f: fmts[f].get("test_acc") for f in fmts}}
    return record


def _targets(method: str, targets: str) -> tuple[str, list[str]]:
    """Key suffix and flags of the teacher-target setting (only runs with a teacher and cached targets differ)."""
    if targets == "online" or method == "student":
        return "", []
    return f"-{targets}", ["--teacher-targets", targets]


def part_curve(archs: list[str], methods: list[str], epochs: list[int], seed: int, data: str,
               targets: str = "online") -> None:
    for arch in archs:
        for method in methods:
            suffix, flags = _targets(method, targets)
            for e in epochs:
                # the curve trains from scratch: the preset would start an airbench student from the teacher
                _run(f"{arch}-{method}{suffix}-e{e}-s{seed}", ["--student-arch", arch, "--method", method, "--epochs",
                                                                str(e), "--seed", str(seed), "--student-init", "random",
                                                                "--no-export", *flags], data)


def part_tune(arch: str, epochs: int, temperatures: list[float], alphas: list[float], seed: int, data: str,
              targets: str = "online", batch_sizes: tuple[int, ...] = (0,), teacher: str = "") -> None:
    """KD's temperature, weight, teacher targets, batch size and teacher, chosen on validation at a short schedule."""
    suffix, flags = _targets("kd", targets)
    if teacher:  # another airbench teacher, e.g. trained without label smoothing (`edgekd train-teacher`)
        suffix += f"-teacher-{Path(teacher).parent.name}"
        flags += ["--teacher", teacher, "--teacher-arch", "airbench"]
    for batch in batch_sizes:  # 0: the recipe's own (airbench's 1024)
        b_suffix, b_flags = (f"-b{batch}", ["--batch-size", str(batch)]) if batch else ("", [])
        for temperature in temperatures:
            for alpha in alphas:
                _run(f"tune-{arch}-kd{suffix}{b_suffix}-e{epochs}-T{temperature:g}-a{alpha:g}-s{seed}",
                     ["--student-arch", arch, "--method", "kd", "--epochs", str(epochs), "--seed", str(seed),
                      "--temperature", str(temperature), "--alpha", str(alpha), "--no-export", *flags, *b_flags], data)


def part_init(arch: str, epochs: list[int], lr_scales: list[float], seed: int, data: str) -> None:
    """Students started from the teacher's channels (`--student-init teacher`), KD with cached targets, at the fast
    recipe's rate times each scale: the fine-tune's rate, chosen on validation; the random start is the tune run."""
    for e in epochs:
        for scale in lr_scales:
            _run(f"init-{arch}-kd-cached-e{e}-lr{scale:g}-s{seed}",
                 ["--student-arch", arch, "--method", "kd", "--epochs", str(e), "--seed", str(seed), "--student-init",
                  "teacher", "--lr-scale", str(scale), "--teacher-targets", "cached", "--no-export"], data)


def _teacher_flags(teacher: str, tta: int) -> tuple[str, list[str]]:
    """Key part and flags of KD's targets: which teacher (the shipped one, or a `--part teacher` run's weights) and
    its test-time augmentation (`--teacher-tta`)."""
    name = "shipped" if teacher in ("", "shipped") else Path(teacher).parent.name
    flags = [] if name == "shipped" else ["--teacher", teacher, "--teacher-arch", "airbench"]
    return f"{name}-tta{tta}", flags + ["--teacher-tta", str(tta)]


def part_targets(epochs: int, teachers: list[str], ttas: list[int], seed: int, data: str) -> None:
    """Better KD targets for the student started from the teacher (the `--part init` run at lr scale 0.1 is the
    shipped teacher without TTA): a teacher trained longer, and the teacher's mirror (or mirror and ±1 px) ensemble;
    chosen on validation."""
    for teacher in teachers:
        for tta in ttas:
            part, flags = _teacher_flags(teacher, tta)
            if part == "shipped-tta0":
                continue  # that is init-<arch>-kd-cached-e<epochs>-lr0.1-s<seed>
            _run(f"targets-{part}-e{epochs}-s{seed}",
                 ["--student-arch", "airbench_x0_5", "--method", "kd", "--epochs", str(epochs), "--seed", str(seed),
                  "--student-init", "teacher", "--lr-scale", "0.1", "--teacher-targets", "cached", "--no-export",
                  *flags], data)


def part_candidate(seeds: list[int], teacher: str, tta: int, data: str) -> None:
    """The preset as it is (kd+ig, started from the teacher, 24 epochs, exported) with other KD targets: the one
    `--part targets` chose on validation, beside the shipped `ship-from-teacher-` runs of the same seeds."""
    part, flags = _teacher_flags(teacher, tta)
    for seed in seeds:
        _run(f"candidate-{part}-s{seed}", ["--seed", str(seed), *flags], data)


def part_tta() -> None:
    """The shipped students' test accuracy with test-time augmentation (mirror; mirror and ±1 px), beside their single
    view: the anchors of the issue (airbench93's 93.0 %) are with TTA. Reported, never chosen on; a file that is
    not on this machine is left out and says so."""
    import torch

    from edgekd.data import load_dataset
    from edgekd.distill.trainer import evaluate
    from edgekd.models.sources import load_model

    torch.set_num_threads(2)
    out = _load("tta.json")
    data = None
    for k, r in _load().items():
        weights = RUNS / k / "student.pt"
        if not k.startswith("ship-") or k in out:
            continue
        if not weights.is_file():
            print(f"{k}: student.pt is not on this machine; left out")
            continue
        if data is None:
            data = load_dataset(DATA, show_progress=False)
        model = load_model(weights, role="student").model.eval()
        out[k] = {"seed": r["seed"], **{f"tta{level}": evaluate(model, data.test, data.mean, data.std, tta=level)
                                         for level in (0, 1, 2)}}
        print(f"{k}: {out[k]}")
        (OUT / "tta.json").write_text(json.dumps(out, indent=1, sort_keys=True))


def _tta_lines() -> list[str]:
    scores = _load("tta.json")
    if not scores:
        return []
    speeds = [v for k, v in _speedups().items() if k in scores]
    cost = (f" (here {min(speeds):.1f}× single view, {min(speeds) / 2:.1f}× with the mirror)" if speeds else "")
    lines = ["## The shipped students with test-time augmentation (reported, not chosen on)", "",
             "`python benchmarks/students_converged.py --part tta`: each kept ship student (`student.pt`, PyTorch fp32) "
             "on the 10,000 test images, single view (the goal's figure) and with the mean of its logits over the image "
             "and its mirror (1) and also ±1 px translations (2). TTA multiplies the device's work (2×, 4×), so the "
             f"6× goal could not take it{cost}.", "",
             "| run | seed | single view % | mirror % | mirror and ±1 px % |", "|---|---:|---:|---:|---:|"]
    for k, r in sorted(scores.items()):
        lines.append(f"| {k} | {r['seed']} | {r['tta0']:.2f} | {r['tta1']:.2f} | {r['tta2']:.2f} |")
    return lines + [""]


def _ship_prefix() -> str:
    """Ship runs of the preset as it is now: students started from the teacher have their own keys."""
    return "ship-" if _preset_start() == "random" else "ship-from-teacher-"


def part_ship(seeds: list[int], data: str) -> None:
    for seed in seeds:
        _run(f"{_ship_prefix()}s{seed}", ["--seed", str(seed)], data)


def part_latency(runs: int, min_time: float) -> None:
    """The shipped teacher in ONNX Runtime fp32 against every shipped student's ONNX INT8 file: one interleaved
    `edgekd bench` run (one thread, batch 1), so each ratio is taken on the same machine state."""
    import numpy as np

    from edgekd.bench.harness import run_benchmark
    from edgekd.bench.report import run_dict
    from edgekd.convert.export import export_model
    from edgekd.convert.spec import InputSpec
    from edgekd.models.sources import load_model
    from edgekd.models.weights import SHIPPED

    ships = {k: r for k, r in _load().items() if k.startswith(("ship-", "wider-", "candidate-")) and r.get("export")}
    gone = [k for k, r in ships.items() if not (ROOT / r["export"]["dir"] / "model.int8.onnx").is_file()]
    for k in gone:  # run folders are not kept in the repository (a fresh checkout has only the records)
        print(f"{k}: its exported file is not on this machine; left out of this run")
        del ships[k]
    if not ships:
        raise SystemExit("no shipped student's files here: run --part ship first")
    teacher_dir = RUNS / "teacher-onnx"
    if not (teacher_dir / "model.onnx").exists():
        entry = next(e for e in SHIPPED if e["arch"] == "airbench")
        teacher = load_model(entry["path"], role="teacher").model.eval()
        spec = InputSpec(shape=(1, 3, 32, 32), mean=tuple(entry["mean"]), std=tuple(entry["std"]))
        export_model(teacher, spec, teacher_dir, formats="onnx",
                     parity_inputs=np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32))
    files = [str(teacher_dir / "model.onnx"), *(str(ROOT / r["export"]["dir"] / "model.int8.onnx") for r in ships.values())]
    run = run_dict(run_benchmark(files, threads=1, runs=runs, min_time_s=min_time, progress=print))
    run["labels"] = ["teacher (shipped airbench) ORT fp32", *(f"{k} ORT INT8" for k in ships)]
    run["command"] = f"python benchmarks/students_converged.py --part latency --runs {runs} --min-time {min_time}"
    (OUT / "latency.json").write_text(json.dumps(run, indent=1))
    print(f"wrote {OUT / 'latency.json'}")


def part_teacher(label_smoothing: float, epochs: int = 16, seed: int = 0, data: str = str(DATA)) -> str:
    """An airbench teacher like the shipped one (benchmarks/teacher.md: fast recipe, 16 epochs) but with this label
    smoothing, for `--part tune --teacher`: `edgekd train-teacher`, resumable; recorded in teachers.json."""
    name = f"teacher-ls{label_smoothing:g}-e{epochs}-s{seed}"
    out = RUNS / name
    teachers = _load("teachers.json")
    if name not in teachers:
        cmd = ["edgekd", "train-teacher", "--preset", "cpu", "--data", data, "--teacher-arch", "airbench", "--recipe",
               "fast", "--teacher-epochs", str(epochs), "--label-smoothing", str(label_smoothing), "--seed", str(seed),
               "--out", str(out)]
        print("$ " + " ".join(cmd), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT)
        info = json.loads((out / "teacher.json").read_text())
        teachers[name] = {"command": " ".join(cmd).replace(str(ROOT) + "/", "").replace(str(ROOT.parent) + "/", "../"),
                          "label_smoothing": label_smoothing, "epochs": epochs, "seed": seed,
                          "val_acc": info["val_acc"], "test_acc": info["test_acc"],
                          "test_acc_flip_tta": info["test_acc_flip_tta"], "process_wall_s": round(time.perf_counter() - t0, 1),
                          "weights": _relative(str(out / "teacher.pt"))}
        OUT.mkdir(exist_ok=True)
        (OUT / "teachers.json").write_text(json.dumps(teachers, indent=1, sort_keys=True))
    print(f"{name}: {teachers[name]}")
    return str(out / "teacher.pt")


def part_teacher_speed(reps: int = 5) -> None:
    """How fast the trainer's `teacher_logits` scores a 1024-image batch with the shipped teacher (bf16 autocast,
    channels_last, 2 threads), in one pass and in chunks: KD's extra cost per step."""
    import numpy as np
    import torch

    from edgekd.distill.trainer import teacher_logits
    from edgekd.models.sources import load_model
    from edgekd.models.weights import SHIPPED
    from edgekd.utils.system import machine_record

    torch.set_num_threads(2)
    entry = next(e for e in SHIPPED if e["arch"] == "airbench")
    teacher = load_model(entry["path"], role="teacher").model.eval().to(memory_format=torch.channels_last)
    x = torch.randn(1024, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    rows = []
    for chunk in (0, 512, 256, 128):
        def once():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                teacher_logits(teacher, x, chunk=chunk)
        once()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            once()
            times.append(time.perf_counter() - t0)
        rows.append({"chunk": chunk or 1024, "images_per_s": round(1024 / float(np.median(times))),
                     "min": round(1024 / max(times)), "max": round(1024 / min(times)), "n": reps})
        print(rows[-1], flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "teacher_speed.json").write_text(json.dumps({"command": "python benchmarks/students_converged.py --part "
                                                        "teacher-speed", "machine": machine_record(), "rows": rows},
                                                       indent=1))


def _mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def _footnote(record: dict, notes: list[str], symbol: str) -> str:
    """A table cell's footnote mark for a record with a note (the note is collected into ``notes``)."""
    if not record.get("note"):
        return ""
    notes.append(record["note"])
    return " " + symbol * len(notes)


def part_report() -> None:
    records = _load()
    lines = ["# Students trained to convergence on a CPU", "",
             "Every row is one `edgekd compress --preset cpu --data ../shared/data/cifar10-png.zip` run (the command "
             "is in `students_converged/runs.json`), on all 45,000 training images (5,000 held out for validation), "
             "test set scored once, single view (no test-time augmentation). Wall time is the whole command: data, "
             "teacher (the shipped airbench, loaded), IG maps, student training, test (and export where shipped), "
             "2 cores, nothing else running. Reproduce: `python benchmarks/students_converged.py --part curve|ship`, "
             "then `--part report`.", ""]
    ships = [r for k, r in records.items() if k.startswith("ship-")]
    if ships:
        lines += ["## What `edgekd compress --data cifar10 --preset cpu` ships", "",
                  "*start*: the student's initialisation, at random (the preset until 2026-12-07) or from the "
                  "teacher's channels (`student_init = \"auto\"`, the preset's since then; below).", "",
                  "| start | seed | student | params | M MACs | epochs | val % | test % | ONNX INT8 test % | TFLite INT8 test % | "
                  "IG steps | IG min | student min | total min | CPU |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        ship_notes = []
        for r in sorted(ships, key=lambda r: (_init(r) == "teacher", r["seed"])):
            ex, t = r.get("export", {}), r["timings"]
            mark = _footnote(r, ship_notes, "*")
            lines.append(f"| {_init(r)} | {r['seed']}{mark} | {r['arch']} | {r['params']:,} | {r['macs'] / 1e6:.1f} | {r['epochs']} | "
                         f"{r['val_acc']:.2f} | "
                         f"{r['test_acc']:.2f} | {ex.get('onnx-int8', float('nan')):.2f} | "
                         f"{ex.get('tflite-int8', float('nan')):.2f} | {(r.get('ig') or {}).get('n_steps')} | "
                         f"{t.get('ig_s', 0) / 60:.1f} | {t['student_s'] / 60:.1f} | {t['total_s'] / 60:.1f} | {r['cpu']} |")
        lines += [""] + [f"{'*' * (i + 1)} {n}." for i, n in enumerate(ship_notes)]
        for start in ("random", "teacher"):
            group = [r for r in ships if _init(r) == start]
            if group:
                lines += ["", f"Started {'at random' if start == 'random' else 'from the teacher'}: test accuracy over "
                          f"{len(group)} seed(s): {_mean_sd([r['test_acc'] for r in group])} %; ONNX INT8 "
                          f"{_mean_sd([r['export']['onnx-int8'] for r in group if r.get('export')])} %; TFLite INT8 "
                          f"{_mean_sd([r['export']['tflite-int8'] for r in group if r.get('export')])} %; validation "
                          f"{_mean_sd([r['val_acc'] for r in group])} %; "
                          f"{_mean_sd([r['timings']['total_s'] / 60 for r in group])} min."]
        lines += [""]
    tune = {k: r for k, r in records.items() if k.startswith("tune-") or
            (r["arch"] == "airbench_x0_5" and r["method"] == "kd" and r["epochs"] == 8
             and not k.startswith(NOT_CURVE))}
    if len(tune) > 1:
        lines += ["## KD's temperature, weight and batch, chosen on validation", "",
                  "`python benchmarks/students_converged.py --part tune --epochs 8 --temperatures 1,2,4` (and "
                  "`--temperatures 2 --alphas 0.8`): airbench_x0_5, KD without IG, 8 epochs, seed 0; the choice is made on "
                  "the validation column (the test column is each run's one scoring, shown, not used). α is the KD term's "
                  "weight (CE with label smoothing 0.2 gets 1 − α); the KD term is KL(teacher ‖ student) at T, times T².", "",
                  "Teacher targets: *online*, the teacher scores every batch the student sees (function matching); "
                  "*cached*, it scores each training image and its mirror once and the batches take those logits "
                  "(`--part tune --temperatures 2 --alphas 0.8 --teacher-targets cached`).", "",
                  "Batch: airbench's 1024, or smaller batches at the same per-example learning rate (the fast recipe scales "
                  "it with the batch); on a CPU images/s hardly depends on the batch (the student min column), so more, "
                  "smaller steps cost no time "
                  "(`--part tune --temperatures 2 --alphas 0.8 --teacher-targets cached --batch-sizes 256,512`).", "",
                  "Teacher: *shipped*, the airbench teacher edgekd ships (label smoothing 0.2); *teacher-ls0-…*, one trained "
                  "the same way without label smoothing (`--part teacher --teacher-ls 0`, then `--part tune --teacher "
                  "PATH`; its accuracy is in `students_converged/teachers.json`).", "",
                  "| T | α | teacher | teacher targets | batch | val % | test % | student min |",
                  "|---:|---:|---|---|---:|---:|---:|---:|"]
        for r in sorted(tune.values(), key=lambda r: (r["hyperparameters"]["temperature"], r["hyperparameters"]["alpha"],
                                                      _teacher_name(r), _teacher_targets(r),
                                                      -r["hyperparameters"]["batch_size"])):
            h = r["hyperparameters"]
            lines.append(f"| {h['temperature']:g} | {h['alpha']:g} | {_teacher_name(r)} | {_teacher_targets(r)} | {h['batch_size']} | "
                         f"{r['val_acc']:.2f} | {r['test_acc']:.2f} | {r['timings']['student_s'] / 60:.1f} |")
        lines.append("")
    lines += _init_lines(records)
    curve = [r for k, r in records.items() if not k.startswith(NOT_CURVE)]
    if curve:
        lines += ["## Accuracy against wall time", "",
                  "| student | method | epochs | seed | val % | test % | student training min | total min | CPU |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---|"]
        notes = []
        for r in sorted(curve, key=lambda r: (r["arch"], _method(r), r["epochs"], r["seed"])):
            mark = _footnote(r, notes, "†")
            lines.append(f"| {r['arch']} ({r['params'] / 1e6:.2f} M, {r['macs'] / 1e6:.0f} M MACs) | {_method(r)}{mark} | "
                         f"{r['epochs']} | {r['seed']} | {r['val_acc']:.2f} | {r['test_acc']:.2f} | "
                         f"{r['timings']['student_s'] / 60:.1f} | {r['timings']['total_s'] / 60:.1f} | {r['cpu']} |")
        lines += [""] + [f"{'†' * (i + 1)} {n}." for i, n in enumerate(notes)]
        _plot(curve, ships, OUT / "curve.png")
        lines += ["", "![accuracy against wall time](students_converged/curve.png)", ""]
    lines += (_latency_lines() + _tta_lines() + _wider_lines(records) + _targets_lines(records) + _teacher_speed_lines()
              + _reading(records))
    (HERE / "students_converged.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {HERE / 'students_converged.md'}")


def _wider_lines(records: dict) -> list[str]:
    """The preset on wider airbench students beside the shipped width, same seed."""
    wider = {k: r for k, r in records.items() if k.startswith("wider-")}
    if not wider:
        return []
    speed = _speedups()
    lines = ["## Wider students under the same preset", "",
             "`python benchmarks/students_converged.py --part wider --widths 48,128,128 --seeds 0`: the preset (started "
             "from the teacher, 24 epochs, exported) on `--student-arch airbench --student-kwargs widths=[…]`, beside the "
             "shipped width (32/128/128) at the same seed. A wider first group works at full resolution, so it costs "
             "more MACs per parameter; *speed* is the goal's ratio (teacher ORT fp32 ÷ this ORT INT8) from the latency "
             "run above, where the file was in it.", "",
             "| widths | seed | params | M MACs | val % | test % | ONNX INT8 test % | TFLite INT8 test % | student min | "
             "total min | speed |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = list(wider.items())
    rows += [(k, r) for k, r in records.items() if k.startswith("ship-from-teacher-") and r["seed"] in
             {w["seed"] for w in wider.values()}]
    for k, r in sorted(rows, key=lambda kr: (kr[1]["seed"], kr[1]["params"])):
        ex, t = r.get("export", {}), r["timings"]
        widths = k.split("-s")[0].removeprefix("wider-w").replace("-", "/") if k.startswith("wider-") else "32/128/128"
        ratio = speed.get(k)
        lines.append(f"| {widths} | {r['seed']} | {r['params']:,} | {r['macs'] / 1e6:.1f} | {r['val_acc']:.2f} | "
                     f"{r['test_acc']:.2f} | {ex.get('onnx-int8', float('nan')):.2f} | "
                     f"{ex.get('tflite-int8', float('nan')):.2f} | {t['student_s'] / 60:.1f} | {t['total_s'] / 60:.1f} | "
                     f"{'' if ratio is None else f'{ratio:.1f}×'} |")
    ships = {r["seed"]: r for k, r in records.items() if k.startswith("ship-from-teacher-")}
    for k, r in sorted(wider.items()):
        base = ships.get(r["seed"])
        if base:
            lines += ["", f"- {k}: test {r['test_acc']:.2f} against {base['test_acc']:.2f} %, val {r['val_acc']:.2f} "
                      f"against {base['val_acc']:.2f} %, {r['timings']['total_s'] / 60:.1f} against "
                      f"{base['timings']['total_s'] / 60:.1f} min, same seed (one seed: a difference under ~0.5 pp is "
                      "within seed-to-seed spread)."]
    return lines + [""]


def _teacher_accuracy(name: str, tta: int) -> float | None:
    """Test accuracy of a teacher under its test-time augmentation level, where measured (its card or
    teachers.json)."""
    if name == "shipped":
        from edgekd.models.weights import SHIPPED

        acc = next(e for e in SHIPPED if e["arch"] == "airbench")["accuracy_percent"]
        return {0: acc.get("test"), 1: acc.get("test_flip_tta"), 2: acc.get("test_flip_translate_tta")}[tta]
    teachers = _load("teachers.json")
    info = teachers.get(name, {})
    return {0: info.get("test_acc"), 1: info.get("test_acc_flip_tta")}.get(tta)


def _tta(r: dict) -> int:
    return int(r["hyperparameters"].get("teacher_tta") or 0)


def _targets_lines(records: dict) -> list[str]:
    """KD's targets from a longer-trained teacher and from the teacher's mirror ensemble (8-epoch screen on
    validation), then the preset with the chosen targets beside the shipped preset, same seed."""
    screen = {k: r for k, r in records.items() if k.startswith("targets-")}
    if not screen:
        return []
    base = {k: r for k, r in records.items() if k.startswith("init-") and r["hyperparameters"]["lr_scale"] == 0.1
            and r["epochs"] in {s["epochs"] for s in screen.values()}}
    lines = ["## Better targets: a teacher trained longer, and the teacher's mirror ensemble", "",
             "`python benchmarks/students_converged.py --part teacher --teacher-epochs 32` (the shipped teacher's "
             "recipe, twice the epochs), then `--part targets --epochs 8 --teachers shipped,runs/converged/"
             "teacher-ls0.2-e32-s0/teacher.pt --teacher-tta 0,1`: airbench_x0_5 started from that teacher's channels, "
             "8 epochs of KD with cached targets at lr scale 0.1, seed 0 (the shipped teacher without TTA is the "
             "`--part init` run). *TTA* is `--teacher-tta`: 1 takes as every image's target the mean of the teacher's "
             "logits of the image and its mirror (the cache scores both anyway, so it costs nothing). *teacher test %* "
             "is the teacher's own accuracy with that TTA. Chosen on the validation column. *student min* is not "
             "comparable between rows: the first was timed in an earlier session, the others on another AMD EPYC.", "",
             "| teacher | teacher test % | TTA | val % before training | val % | test % | student min |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for k, r in sorted({**base, **screen}.items(), key=lambda kr: (_teacher_name(kr[1]), _tta(kr[1]))):
        acc = _teacher_accuracy(_teacher_name(r), _tta(r))
        lines.append(f"| {_teacher_name(r)} | {'' if acc is None else f'{acc:.2f}'} | {_tta(r)} | "
                     f"{r.get('student_init_val_acc', float('nan')):.2f} | {r['val_acc']:.2f} | {r['test_acc']:.2f} | "
                     f"{r['timings']['student_s'] / 60:.1f} |")
    rows = sorted({**base, **screen}.values(), key=lambda r: -r["val_acc"])
    best, spread = rows[0], rows[0]["val_acc"] - rows[-1]["val_acc"]
    shipped_own = _teacher_name(best) == "shipped" and not _tta(best)
    cells = ", ".join(f"{_teacher_name(r)} TTA {_tta(r)} {r['val_acc']:.2f}" for r in rows)
    verdict = ("within one seed's noise (one seed each; 5,000 validation images alone carry ±0.36 pp of sampling "
               "error), so no target is shown to be better" if spread < 0.5 else
               "one seed each: a screen for the full preset's run, not a finding")
    winner = "the shipped teacher's own logits" if shipped_own else f"{_teacher_name(best)} at TTA {_tta(best)}"
    lines += ["", f"- Validation after {best['epochs']} epochs: {cells} %. Best: {winner}; the spread ({spread:.2f} pp) "
              f"is {verdict}."]
    teachers = _load("teachers.json")
    shipped_acc = (_teacher_accuracy("shipped", 0), _teacher_accuracy("shipped", 1))
    for name in sorted({_teacher_name(r) for r in screen.values()} - {"shipped"}):
        info = teachers.get(name)
        if not info:
            continue
        load = f"; {info['load']}" if info.get("load") else ""
        students = [r["val_acc"] for r in rows if _teacher_name(r) == name]
        shipped_students = [r["val_acc"] for r in rows if _teacher_name(r) == "shipped"]
        gap = max(students) - max(shipped_students) if students and shipped_students else None
        lines.append(f"- The teacher `{name}` ({info['epochs']} epochs, {info['process_wall_s'] / 60:.0f} min{load}): test "
                     f"{info['test_acc']:.2f} %, {info['test_acc_flip_tta']:.2f} % with its mirror, against the shipped "
                     f"teacher's {shipped_acc[0]:.2f} / {shipped_acc[1]:.2f} % (16 epochs); its best student "
                     + ("" if gap is None else f"{gap:+.2f} pp on validation from the shipped teacher's best"
                        + (" (within one seed's noise)." if abs(gap) < 0.5 else " (one seed).")))
    candidates = {k: r for k, r in records.items() if k.startswith("candidate-")}
    if candidates:
        ships = {r["seed"]: r for k, r in records.items() if k.startswith("ship-from-teacher-")}
        lines += ["", "The preset (kd+ig, started from the teacher, 24 epochs, exported) with the chosen targets "
                  "(`--part candidate --teacher PATH --teacher-tta N --seeds …`) beside the preset as shipped, same seed:",
                  "", "| targets | seed | val % | test % | ONNX INT8 test % | TFLite INT8 test % | IG min | student min | "
                  "total min |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        rows = [(k.removeprefix("candidate-").rsplit("-s", 1)[0], r) for k, r in candidates.items()]
        rows += [("shipped-tta0 (the preset)", ships[r["seed"]]) for _, r in rows if r["seed"] in ships]
        for name, r in sorted(rows, key=lambda nr: (nr[1]["seed"], nr[0])):
            ex, t = r.get("export", {}), r["timings"]
            lines.append(f"| {name} | {r['seed']} | {r['val_acc']:.2f} | {r['test_acc']:.2f} | "
                         f"{ex.get('onnx-int8', float('nan')):.2f} | {ex.get('tflite-int8', float('nan')):.2f} | "
                         f"{t.get('ig_s', 0) / 60:.1f} | {t['student_s'] / 60:.1f} | {t['total_s'] / 60:.1f} |")
        by_name: dict[str, list[dict]] = {}
        for name, r in rows:
            by_name.setdefault(name, []).append(r)
        for name, group in sorted(by_name.items()):
            lines += ["", f"- {name}: test {_mean_sd([r['test_acc'] for r in group])} %, val "
                      f"{_mean_sd([r['val_acc'] for r in group])} %, {_mean_sd([r['timings']['total_s'] / 60 for r in group])}"
                      f" min over seed(s) {', '.join(str(r['seed']) for r in group)}."]
    return lines + [""]


def _speedups() -> dict:
    """Run key → teacher ORT fp32 p50 ÷ its ORT INT8 p50, from the latency run (keys it timed only)."""
    p = OUT / "latency.json"
    if not p.exists():
        return {}
    run = json.loads(p.read_text())
    teacher = run["results"][0]["stats"]["p50_ms"]
    return {label.removesuffix(" ORT INT8"): teacher / r["stats"]["p50_ms"]
            for label, r in zip(run["labels"][1:], run["results"][1:]) if (r.get("stats") or {}).get("p50_ms")}


def _init_lines(records: dict) -> list[str]:
    """Students started from the teacher's channels beside the random start at the same settings."""
    starts = [r for k, r in records.items() if k.startswith("init-")]
    if not starts:
        return []
    def same(a: dict, b: dict) -> bool:
        return (a["arch"], a["method"], a["epochs"], _teacher_targets(a)) == (b["arch"], b["method"], b["epochs"],
                                                                               _teacher_targets(b)) and all(
            a["hyperparameters"][k] == b["hyperparameters"][k] for k in ("temperature", "alpha", "batch_size"))

    random = [r for k, r in records.items() if k.startswith("tune-") and _init(r) == "random" and _teacher_name(r) == "shipped"
              and any(same(r, s) for s in starts)]
    lines = ["## Starting the student from the teacher's channels", "",
             "`python benchmarks/students_converged.py --part init --epochs 8 --lr-scales 0.1,0.3`: airbench_x0_5 "
             "started from the shipped teacher's most useful channels (`--student-init teacher`: every channel space "
             "of the teacher keeps the channels whose input to the layers reading them is largest, rms × weight norm, "
             "on 2,048 training images; edgekd/models/prune.py), KD with cached targets, seed 0, beside the same run "
             "started at random (the tune run above). The fast recipe's rate times *lr scale*: a fine-tune wants less "
             "than airbench's rate from scratch; chosen on the validation column.", "",
             "| start | lr scale | epochs | val % before training | val % | test % | student min |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(random + starts, key=lambda r: (r["epochs"], _init(r), r["hyperparameters"].get("lr", 0))):
        before = r.get("student_init_val_acc")
        scale = r["hyperparameters"].get("lr_scale") or 1
        lines.append(f"| {_init(r)} | {scale:g} | {r['epochs']} | {'' if before is None else f'{before:.2f}'} | "
                     f"{r['val_acc']:.2f} | {r['test_acc']:.2f} | {r['timings']['student_s'] / 60:.1f} |")
    return lines + [""]


def _latency_lines() -> list[str]:
    p = OUT / "latency.json"
    if not p.exists():
        return []
    run = json.loads(p.read_text())
    res = run["results"]
    teacher = res[0]
    cpu = run.get("system", {}).get("cpu")
    lines = ["## Speed against the teacher", "",
             f"`{run['command']}`: one interleaved `edgekd bench` run, one thread, batch 1, on "
             f"{cpu.get('model') if isinstance(cpu, dict) else cpu}; p50 (p90) over n calls. The ratio is the goal's: "
             "teacher ONNX Runtime fp32 ÷ student ONNX Runtime INT8, within this one run.", "",
             "| file | p50 ms | p90 ms | n | teacher ORT fp32 ÷ this |", "|---|---:|---:|---:|---:|"]
    for label, r in zip(run["labels"], res):
        st = r.get("stats") or {}
        ratio = teacher["stats"]["p50_ms"] / st["p50_ms"] if st.get("p50_ms") else float("nan")
        lines.append(f"| {label} | {st.get('p50_ms', float('nan')):.3f} | {st.get('p90_ms', float('nan')):.3f} | "
                     f"{st.get('n', '')} | {ratio:.1f}× |")
    return lines + [""]


def _teacher_speed_lines() -> list[str]:
    p = OUT / "teacher_speed.json"
    if not p.exists():
        return []
    r = json.loads(p.read_text())
    lines = ["## KD's cost: the teacher's pass over each batch", "",
             f"`{r['command']}` on {r['machine']['cpu']}: the shipped teacher scoring a 1,024-image batch through the "
             "trainer's `teacher_logits` (bf16, channels_last, 2 threads), median of n passes after one warm-up "
             "(min–max). The trainer scores in chunks of 256 on a CPU: the same logits, less time.", "",
             "| chunk | images/s | min–max | n |", "|---:|---:|---|---:|"]
    lines += [f"| {x['chunk']} | {x['images_per_s']} | {x['min']}–{x['max']} | {x['n']} |" for x in r["rows"]]
    return lines + [""]


def _reading(records: dict) -> list[str]:
    """The goals of `--preset cpu` against what was measured."""
    all_ships = [r for k, r in records.items() if k.startswith("ship-")]
    now = _preset_start()
    ships = [r for r in all_ships if _init(r) == now] or all_ships
    if not ships:
        return []
    random_ships = [r for r in all_ships if _init(r) == "random"]
    acc = [r["test_acc"] for r in ships]
    int8 = [r["export"]["onnx-int8"] for r in ships if r.get("export")]
    wall = [r["timings"]["total_s"] / 60 for r in ships]
    out = ["## Reading", "",
           f"- The preset as it is now (student started {'from the teacher' if now == 'teacher' else 'at random'}). "
           f"Goal ≥ 93.0 % test, single view: **{'met' if min(int8 or acc) >= 93.0 else 'not met'}** — "
           f"{_mean_sd(acc)} % over {len(ships)} seed(s) (ONNX INT8 {_mean_sd(int8)} %), {ships[0]['cpu']}. "
           f"Goal ≤ 30 min end to end: {'met' if max(wall) <= 30 else 'not met'} ({', '.join(f'{w:.1f}' for w in wall)} "
           f"min). Goal ≤ 0.6 M parameters: met ({ships[0]['params']:,})."]
    curve = {k: r for k, r in records.items() if not k.startswith(NOT_CURVE)}
    tune = [r for k, r in records.items() if k.startswith("tune-")] + \
        [r for r in curve.values() if r["arch"] == "airbench_x0_5" and r["method"] == "kd" and r["epochs"] == 8]
    other_teachers = [r for r in tune if _teacher_name(r) != "shipped"]
    tune = [r for r in tune if _teacher_name(r) == "shipped"]
    if len(tune) > 1:
        best = max(tune, key=lambda r: r["val_acc"])
        cells = ", ".join(f"T {r['hyperparameters']['temperature']:g} α {r['hyperparameters']['alpha']:g}"
                          f"{' (cached targets)' if _teacher_targets(r) == 'cached' else ''}"
                          f"{'' if r['hyperparameters']['batch_size'] == 1024 else ' batch ' + str(r['hyperparameters']['batch_size'])}: "
                          f"{r['val_acc']:.2f}" for r in sorted(tune, key=lambda r: -r["val_acc"]))
        out.append(f"- KD's settings, on validation (8 epochs, seed 0): {cells} % → the preset takes T "
                   f"{best['hyperparameters']['temperature']:g}, α {best['hyperparameters']['alpha']:g}. One seed "
                   "each: the spread between settings (≈ 0.5 pp) is about one seed's noise, so this is the best guess "
                   "the budget allowed, not a finding.")
        e16 = [r for r in curve.values() if r.get("note") and r["method"] == "kd+ig" and r["epochs"] == 16]
        e18 = [r for r in curve.values() if r.get("note") and r["method"] == "kd+ig" and r["epochs"] == 18]
        if e16 and e18:
            out.append(f"- The preset before this tuning (16 epochs, α 0.5, one seed): {e16[0]['test_acc']:.2f} % test, val "
                       f"{e16[0]['val_acc']:.2f}; after it (18 epochs, α 0.8, {len(e18)} seeds): "
                       f"{_mean_sd([r['test_acc'] for r in e18])} %, val {_mean_sd([r['val_acc'] for r in e18])}: level, "
                       "the tuning bought nothing measurable.")
    from edgekd.distill.recipes import FROM_TEACHER

    starts = [r for k, r in records.items() if k.startswith("init-")]
    random_e8 = [r for r in tune if _teacher_targets(r) == "cached" and r["epochs"] == 8 and _init(r) == "random"
                 and r["hyperparameters"]["batch_size"] == 1024 and r["hyperparameters"]["alpha"] == 0.8]
    if starts and random_e8:
        best = max(starts, key=lambda r: r["val_acc"])
        out.append("- Starting from the teacher's channels, 8 epochs of KD (cached targets, seed 0): val "
                   + ", ".join(f"{r['val_acc']:.2f} % at lr scale {r['hyperparameters']['lr_scale']:g}" for r in starts)
                   + f" against {random_e8[0]['val_acc']:.2f} % started at random (test {best['test_acc']:.2f} vs "
                   f"{random_e8[0]['test_acc']:.2f} %); the student starts at {best.get('student_init_val_acc', 0):.1f} % "
                   f"val before any training. The best on validation: lr scale "
                   f"{best['hyperparameters']['lr_scale']:g}; `FROM_TEACHER` (edgekd/distill/recipes.py) takes "
                   f"{FROM_TEACHER['lr_scale']:g}.")
    teacher_ships = {r["seed"]: r for r in all_ships if _init(r) == "teacher"}
    pairs = [(teacher_ships[r["seed"]], r) for r in random_ships if r["seed"] in teacher_ships]
    if pairs:
        out.append("- The preset started from the teacher against the preset before it (started at random, "
                   f"{random_ships[0]['epochs']} epochs), same seed: " + "; ".join(
                       f"seed {t['seed']}: test {t['test_acc']:.2f} vs {r['test_acc']:.2f} %, val {t['val_acc']:.2f} vs "
                       f"{r['val_acc']:.2f} %, {t['timings']['total_s'] / 60:.1f} vs {r['timings']['total_s'] / 60:.1f} min"
                       for t, r in pairs)
                   + f" ({len(pairs)} seed(s); the start from the teacher trains {pairs[0][0]['epochs']} epochs).")
    cached = [r for r in tune if _teacher_targets(r) == "cached"]
    same = [(c, o) for c in cached for o in tune if _teacher_targets(o) == "online"
            and all(o["hyperparameters"][k] == c["hyperparameters"][k] for k in ("temperature", "alpha", "epochs",
                                                                                  "batch_size"))]
    if same:
        c, o = same[0]
        out.append(f"- Teacher targets, 8 epochs of KD, seed 0: cached {c['val_acc']:.2f} % val in "
                   f"{c['timings']['student_s'] / 60:.1f} min, online {o['val_acc']:.2f} % in "
                   f"{o['timings']['student_s'] / 60:.1f} min. The cache gives up the ±2 px translation of the teacher's "
                   "view (the student still sees it) for an epoch ~35 % shorter; the validation cost is within "
                   "one seed's spread, so at a fixed half hour the preset spends the time on epochs.")
    batches = sorted((r for r in cached if r["hyperparameters"]["temperature"] == 2 and r["hyperparameters"]["alpha"] == 0.8
                      and r["epochs"] == 8),
                     key=lambda r: -r["hyperparameters"]["batch_size"])
    if len({r["hyperparameters"]["batch_size"] for r in batches}) > 1:
        best = max(batches, key=lambda r: r["val_acc"])
        out.append("- Batch, 8 epochs of KD with cached targets, seed 0: " + ", ".join(
            f"{r['hyperparameters']['batch_size']}: val {r['val_acc']:.2f} % ({r['timings']['student_s'] / 60:.1f} min)"
            for r in batches) + f" → the recipe keeps {best['hyperparameters']['batch_size']}. Smaller steps cost no "
            "time on a CPU but bought nothing on validation.")
    teachers = _load("teachers.json")
    for name in sorted({_teacher_name(r) for r in other_teachers}):
        t = teachers.get(name, {})
        runs = sorted((r for r in other_teachers if _teacher_name(r) == name), key=lambda r: -r["hyperparameters"]["alpha"])
        cells = []
        for r in runs:
            h = r["hyperparameters"]
            base = [b for b in tune if _teacher_targets(b) == _teacher_targets(r) and b["epochs"] == r["epochs"] and all(
                b["hyperparameters"][k] == h[k] for k in ("temperature", "alpha", "batch_size"))]
            early = [e["val_acc"] for e in r.get("history", [])[1 : r["epochs"] - 2]]
            cells.append(f"T {h['temperature']:g}, α {h['alpha']:g}: val {r['val_acc']:.2f} % (test {r['test_acc']:.2f})"
                         + (f", the training diverged: val at most {max(early):.1f} % from epoch 2 to {r['epochs'] - 2}"
                            if early and max(early) < 50 else "")
                         + (f"; from the shipped teacher {base[0]['val_acc']:.2f} %" if base else ""))
        out.append(
            f"- The teacher's label smoothing (Müller et al. 2019 found smoothed teachers distil worse). KD with "
            f"{_teacher_targets(runs[0])} targets, {runs[0]['epochs']} epochs, seed 0, from a teacher trained like the "
            f"shipped one but without smoothing (val {t.get('val_acc', float('nan')):.2f} %, test "
            f"{t.get('test_acc', float('nan')):.2f} %; the shipped one: test "
            f"{next((b['teacher_test_acc'] for b in tune if b.get('teacher_test_acc')), float('nan')):.2f} % with "
            f"smoothing 0.2; `{t.get('command', '')}`): " + "; ".join(cells) + ". "
            "Unsmoothed targets are sharper, so at the recipe's learning rate the KD term pushes harder than the labels "
            "it was tuned for; on validation the shipped, smoothed teacher stays.")
    e18 = [r for r in curve.values() if r.get("note") and r["method"] == "kd+ig" and r["epochs"] == 18]
    if e18 and any(_teacher_targets(r) == "cached" for r in random_ships):
        out.append(f"- The preset with online targets (18 epochs, {len(e18)} seeds, exported): test "
                   f"{_mean_sd([r['test_acc'] for r in e18])} %, val {_mean_sd([r['val_acc'] for r in e18])} %, "
                   f"{_mean_sd([r['timings']['total_s'] / 60 for r in e18])} min; with cached targets "
                   f"({random_ships[0]['epochs']} epochs, {len(random_ships)} seeds): test "
                   f"{_mean_sd([r['test_acc'] for r in random_ships])} %, val "
                   f"{_mean_sd([r['val_acc'] for r in random_ships])} %, "
                   f"{_mean_sd([r['timings']['total_s'] / 60 for r in random_ships])} min.")
    by = {(r["method"], r["epochs"]): r for r in curve.values() if r["arch"] == "airbench_x0_5" and r["seed"] == 0
          and _teacher_targets(r) == "online"}
    for e in sorted({e for _, e in by}):
        pair = [by.get(("student", e)), by.get(("kd", e)), by.get(("kd+ig", e))]
        cells = [f"{m} {r['test_acc']:.2f} %" for m, r in zip(("labels", "KD", "KD+IG"), pair) if r]
        if len(cells) > 1:
            out.append(f"- airbench_x0_5, {e} epochs, seed 0: " + ", ".join(cells) + " (one seed: differences this "
                       "small are within seed-to-seed spread, not findings).")
    per_epoch = {}
    for r in curve.values():
        if r["arch"] == "airbench_x0_5" and not r.get("note") and _teacher_targets(r) == "online":
            per_epoch.setdefault(r["method"], []).append(r["timings"]["student_s"] / r["epochs"])
    if "student" in per_epoch and "kd" in per_epoch:
        lab, kd = statistics.median(per_epoch["student"]), statistics.median(per_epoch["kd"])
        out.append(f"- What a minute buys: an epoch of airbench_x0_5 costs {lab:.0f} s from labels and {kd:.0f} s with "
                   f"KD (median over the runs above): the teacher's pass over every batch is {1 - lab / kd:.0%} of a KD "
                   f"epoch, so at equal wall time labels alone train {kd / lab:.1f}× the epochs.")
    labels = [r for (m, _), r in by.items() if m == "student"]
    for (m, e), r in sorted(by.items()):
        if m != "kd" or not labels:
            continue
        near = min(labels, key=lambda x: abs(x["timings"]["student_s"] - r["timings"]["student_s"]))
        out.append(f"- KD {e} epochs: {r['test_acc']:.2f} % (val {r['val_acc']:.2f}) in "
                   f"{r['timings']['student_s'] / 60:.1f} min; the labels run nearest in time: {near['epochs']} epochs, "
                   f"{near['test_acc']:.2f} % (val {near['val_acc']:.2f}) in {near['timings']['student_s'] / 60:.1f} min.")
    for k, r in sorted(records.items()):
        if k.startswith("probe-") and r.get("note"):
            out.append(f"- {r['arch']}, {_method(r)}, {r['epochs']} epochs, seed 0, {r['note']}: val {r['val_acc']:.2f} %, "
                       f"test {r['test_acc']:.2f} % (`{r['command']}`).")
    lr_probes = sorted((r for k, r in records.items() if k.startswith("probe-") and not r.get("note")),
                       key=lambda r: -r["hyperparameters"]["lr"])
    if lr_probes:
        out.append(f"- The rate for {lr_probes[0]['arch']} under the fast recipe, chosen on validation after "
                   f"{lr_probes[0]['epochs']} epochs (`edgekd compress --preset cpu --student-arch {lr_probes[0]['arch']} "
                   "--method student --epochs 2 --lr-scale S --no-export`): " + ", ".join(
                       f"lr {r['hyperparameters']['lr']:.3g} (epoch 1 val {r['history'][0]['val_acc']:.1f} %, epoch 2 "
                       f"{r['history'][-1]['val_acc']:.1f} %)" for r in lr_probes)
                   + ". The registry entry of the ResNet, MobileNetV2 and truncated-student families takes the best "
                   "(`fast_recipe` in edgekd/models/), with plain BatchNorm shifts; only ResNet-20 was measured.")
    others = {}
    for r in curve.values():
        if r["arch"] != "airbench_x0_5" and r["seed"] == 0:
            others.setdefault((r["arch"], r["epochs"]), {})[r["method"]] = r
    for (arch, e), runs in sorted(others.items()):
        if len(runs) > 1:
            out.append(f"- {arch}, {e} epochs, seed 0: " + ", ".join(
                f"{'labels' if m == 'student' else m} {r['test_acc']:.2f} % (val {r['val_acc']:.2f}, "
                f"{r['timings']['student_s'] / 60:.1f} min)" for m, r in sorted(runs.items(), key=lambda mr: mr[0] != "student"))
                + " (one seed).")
    wide = [r for r in curve.values() if r["arch"] == "airbench93" and r["method"] == "kd"]
    kd05 = [r for (m, _), r in by.items() if m == "kd"]
    for r in wide:
        near = min(kd05, key=lambda x: abs(x["timings"]["student_s"] - r["timings"]["student_s"])) if kd05 else None
        out.append(f"- airbench93 (widths 64/128/128, {r['params']:,} parameters, {r['macs'] / 1e6:.0f} M MACs) with KD, "
                   f"{r['epochs']} epochs: val {r['val_acc']:.2f} %, test {r['test_acc']:.2f} % in "
                   f"{r['timings']['student_s'] / 60:.1f} min"
                   + (f"; airbench_x0_5 with KD, {near['epochs']} epochs: val {near['val_acc']:.2f} %, test "
                      f"{near['test_acc']:.2f} % in {near['timings']['student_s'] / 60:.1f} min" if near else "")
                   + ". At this budget the wider first group is worth about as much as the extra epochs it costs, and it "
                   "runs 1.6× the MACs on the device, so the preset keeps airbench_x0_5.")
    return out + [""]


def _plot(curve: list[dict], ships: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    groups: dict[tuple, list] = {}
    for r in curve:
        groups.setdefault((r["arch"], _method(r)), []).append(r)
    for (arch, method), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["timings"]["total_s"])
        name = "labels only" if method == "student" else method.replace("kd", "KD").replace("ig", "IG")
        ax.plot([r["timings"]["total_s"] / 60 for r in rs], [r["test_acc"] for r in rs], "o-", label=f"{arch} {name}")
    for start, marker in (("random", "k*"), ("teacher", "r*")):
        group = [r for r in ships if _init(r) == start]
        if group:
            ax.plot([r["timings"]["total_s"] / 60 for r in group], [r["test_acc"] for r in group], marker, markersize=11,
                    label=f"--preset cpu, student started {'at random' if start == 'random' else 'from the teacher'} "
                          "(KD+IG, cached targets; IG and export included)")
    ax.set_xlabel("wall time of the whole command, minutes (2 cores)")
    ax.set_ylabel("CIFAR-10 test accuracy, % (single view)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def part_wider(widths: list[int], seeds: list[int], data: str) -> None:
    """The preset (from the teacher, 24 epochs, exported) on an airbench whose groups have these widths: a wider
    first group costs MACs at full resolution, so the ≥ 6× goal bounds it (`--part latency`)."""
    for seed in seeds:
        _run(f"wider-w{'-'.join(map(str, widths))}-s{seed}",
             ["--seed", str(seed), "--student-arch", "airbench", "--student-kwargs", f"widths=[{','.join(map(str, widths))}]"],
             data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["curve", "tune", "init", "teacher", "targets", "candidate", "ship", "wider",
                                       "latency", "tta", "teacher-speed", "report"],
                    required=True)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--archs", default="airbench_x0_5")
    ap.add_argument("--methods", default="student,kd")
    ap.add_argument("--epochs", default="8,16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperatures", default="1,2,4", help="--part tune")
    ap.add_argument("--alphas", default="0.5", help="--part tune: the KD term's weight (CE gets 1 - alpha)")
    ap.add_argument("--teacher-targets", default="online", choices=["online", "cached"],
                    help="--part curve/tune: KD's teacher scores every batch, or each image and its mirror once")
    ap.add_argument("--batch-sizes", default="0", help="--part tune: the student's batch (0 = the recipe's own, 1024)")
    ap.add_argument("--teacher", default="", help="--part tune/candidate: another airbench teacher's weights "
                                                  "(default: the shipped)")
    ap.add_argument("--teachers", default="shipped", help="--part targets: teachers, comma-separated (shipped or a "
                                                          "`--part teacher` run's teacher.pt)")
    ap.add_argument("--teacher-tta", default="0", help="--part targets/candidate: the teacher's test-time augmentation "
                                                       "levels for KD's targets (0 none, 1 mirror, 2 mirror and ±1 px)")
    ap.add_argument("--teacher-ls", type=float, default=0.2,
                    help="--part teacher: the teacher's label smoothing (airbench's: 0.2)")
    ap.add_argument("--teacher-epochs", type=int, default=16, help="--part teacher: its epochs (the shipped one's: 16)")
    ap.add_argument("--lr-scales", default="0.1,0.3", help="--part init: the fast recipe's rate times these")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--widths", default="48,128,128", help="--part wider: the airbench student's three group widths")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--min-time", type=float, default=2.0)
    args = ap.parse_args()
    if args.part == "curve":
        part_curve(args.archs.split(","), args.methods.split(","), [int(e) for e in args.epochs.split(",")], args.seed,
                   args.data, args.teacher_targets)
    elif args.part == "tune":
        part_tune(args.archs.split(",")[0], int(args.epochs.split(",")[0]), [float(x) for x in args.temperatures.split(",")],
                  [float(x) for x in args.alphas.split(",")], args.seed, args.data, args.teacher_targets,
                  tuple(int(b) for b in args.batch_sizes.split(",")), args.teacher)
    elif args.part == "init":
        part_init(args.archs.split(",")[0], [int(e) for e in args.epochs.split(",")],
                  [float(x) for x in args.lr_scales.split(",")], args.seed, args.data)
    elif args.part == "teacher":
        part_teacher(args.teacher_ls, epochs=args.teacher_epochs, seed=args.seed, data=args.data)
    elif args.part == "targets":
        part_targets(int(args.epochs.split(",")[0]), args.teachers.split(","),
                     [int(t) for t in args.teacher_tta.split(",")], args.seed, args.data)
    elif args.part == "candidate":
        part_candidate([int(s) for s in args.seeds.split(",")], args.teacher, int(args.teacher_tta), args.data)
    elif args.part == "ship":
        part_ship([int(s) for s in args.seeds.split(",")], args.data)
    elif args.part == "wider":
        part_wider([int(w) for w in args.widths.split(",")], [int(s) for s in args.seeds.split(",")], args.data)
    elif args.part == "latency":
        part_latency(args.runs, args.min_time)
    elif args.part == "tta":
        part_tta()
    elif args.part == "teacher-speed":
        part_teacher_speed()
    else:
        part_report()


if __name__ == "__main__":
    main()
