"""The fast CPU teacher: what each CPU technique buys, and the full training runs.

    python benchmarks/teacher.py --part steps            # training-step throughput per technique (~3 min)
    python benchmarks/teacher.py --part train --epochs 16 --repeats 2   # `edgekd train-teacher` runs (seeds 1, 2), timed
    python benchmarks/teacher.py --part report           # benchmarks/teacher.md from the JSON files

``steps`` times airbench training steps (forward, backward, Nesterov SGD) on real CIFAR-10
batches, one technique added at a time: fp32 NCHW → channels_last → bf16 autocast (where the
CPU has AVX-512-BF16/AMX) → torch.compile, at several batch sizes and thread counts, N = 8
steps after 3 warm-up steps, median and spread. The MobileNetV2 teacher is timed the same way
for comparison. ``train`` runs the product's command and records wall time and accuracy
(plain and with flip test-time augmentation).
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


def _steps(arch: str, mode: str, batch: int, threads: int, n: int = 8) -> dict:
    import numpy as np
    import torch

    from edgekd.data import load_dataset
    from edgekd.data.transforms import normalize, to_float
    from edgekd.models import create_model

    torch.set_num_threads(threads)
    d = load_dataset(DATA, show_progress=False)
    m = create_model(arch)
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.01, momentum=0.85, nesterov=True)
    rng = np.random.default_rng(0)
    batches = [torch.from_numpy(np.ascontiguousarray(d.train.images[np.sort(rng.choice(len(d.train), batch, replace=False))]))
               for _ in range(3)]
    y = torch.randint(0, 10, (batch,))
    cl = "cl" in mode
    if cl:
        m = m.to(memory_format=torch.channels_last)
    fwd = torch.compile(m) if "compile" in mode else m

    def step(xb):
        x = normalize(to_float(xb), d.mean, d.std)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled="bf16" in mode):
            loss = torch.nn.functional.cross_entropy(fwd(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(3):
        step(batches[i % 3])
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        step(batches[i % 3])
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"arch": arch, "mode": mode, "batch": batch, "threads": threads, "n": n,
            "median_s": med, "min_s": min(times), "max_s": max(times), "images_per_s": batch / med}


def part_steps(out: Path) -> None:
    from edgekd.distill.trainer import cpu_has_bf16
    from edgekd.utils.system import machine_record

    rows = []
    modes = ["fp32", "fp32-cl"] + (["bf16-cl", "bf16-cl-compile"] if cpu_has_bf16() else [])
    for mode in modes:
        rows.append(_steps("airbench", mode, 256, 2))
        print(rows[-1], flush=True)
    best = modes[-2] if len(modes) > 2 else modes[-1]
    for batch in (512, 1024):
        rows.append(_steps("airbench", best, batch, 2))
        print(rows[-1], flush=True)
    rows.append(_steps("airbench", best, 256, 1))
    print(rows[-1], flush=True)
    for mode in ("fp32-cl", best):
        rows.append(_steps("mobilenetv2_cifar", mode, 256, 2, n=4))
        print(rows[-1], flush=True)
    from edgekd.utils.io import write_json

    write_json(out, {"machine": machine_record(), "bf16": cpu_has_bf16(), "rows": rows,
                     "command": "python benchmarks/teacher.py --part steps"})


def part_train(out: Path, epochs: int, repeats: int, root: Path, first_seed: int = 1) -> None:
    """``repeats`` more runs with seeds first_seed, first_seed + 1, … (the shipped teacher is seed 0)."""
    from edgekd.utils.io import read_json, write_json
    from edgekd.utils.system import machine_record

    runs = read_json(out).get("runs", []) if out.exists() else []
    for k in range(repeats):
        seed = first_seed + k
        run_dir = root / f"airbench-e{epochs}-s{seed}"
        cmd = [sys.executable, "-m", "edgekd", "train-teacher", "--data", str(DATA), "--teacher-arch", "airbench",
               "--recipe", "fast", "--teacher-epochs", str(epochs), "--train-subset", "0", "--threads", "2",
               "--seed", str(seed), "--out", str(run_dir)]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(r.stderr[-2000:])
        info = read_json(run_dir / "teacher.json")
        runs.append({"epochs": epochs, "repeat": len(runs), "seed": seed, "load": "quiet", "wall_s": round(wall, 1), "train_s": info.get("seconds"),
                     "val_acc": info["val_acc"], "test_acc": info["test_acc"],
                     "test_acc_flip_tta": info["test_acc_flip_tta"], "command": " ".join(cmd[1:]),
                     "machine": machine_record()})
        print(runs[-1], flush=True)
        write_json(out, {"runs": runs})


def part_report(steps_file: Path, runs_file: Path) -> None:
    """benchmarks/teacher.md: the step table (ratios against fp32 NCHW at batch 256, 2 threads) and every run."""
    import statistics

    from edgekd.utils.io import read_json

    steps = read_json(steps_file)
    m = steps["machine"]
    base = {r["arch"]: r["images_per_s"] for r in steps["rows"] if r["mode"] == "fp32" and r["batch"] == 256
            and r["threads"] == 2}
    base.setdefault("mobilenetv2_cifar", next(r["images_per_s"] for r in steps["rows"]
                                              if r["arch"] == "mobilenetv2_cifar" and r["mode"] == "fp32-cl"))
    lines = ["# The fast CPU teacher", "",
             "## What each CPU technique buys (training steps)", "",
             f"`{steps['command']}` on {m['cpu']} ({m['cores']} cores, bf16 instructions: {steps['bf16']}): forward, "
             "backward and a Nesterov SGD step on real CIFAR-10 batches; N = 8 timed steps after 3 warm-up steps per "
             "row; images/s from the median step, spread = the fastest and slowest step.", "",
             "| network | technique | batch | threads | images/s | step s (min … max) | vs fp32 NCHW |",
             "|---|---|---|---|---|---|---|"]
    for r in steps["rows"]:
        lines.append(f"| {r['arch']} | {r['mode']} | {r['batch']} | {r['threads']} | {r['images_per_s']:.0f} | "
                     f"{r['median_s']:.3f} ({r['min_s']:.3f} … {r['max_s']:.3f}) | "
                     f"{r['images_per_s'] / base[r['arch']]:.2f}× |")
    lines += ["", "Read: channels_last alone is worth little here; bf16 autocast (this CPU has AVX-512-BF16) is worth "
              "1.5×; torch.compile *loses* 10 % on top of it (its generated kernels beat neither oneDNN's convolutions "
              "nor its bf16 path on 2 cores), so the recipe does not compile; a second thread gives 1.7×. Batches "
              "larger than 256 are slower per image here (cache), but the recipe keeps airbench's batch 1024 so its "
              "tuned learning rate schedule holds. The MobileNetV2 teacher, in its best mode, trains at 118 images/s: "
              "airbench's dense 3×3 convolutions are 5.2× faster per image.", ""]
    runs = read_json(runs_file).get("runs", []) if runs_file.exists() else []
    if runs:
        lines += ["## Training runs (`edgekd train-teacher --recipe fast`)", "",
                  "Each row is the product's command on the shared CIFAR-10 (45,000 training images, 5,000 held out "
                  "for validation; the official 10,000 test images scored once at the end). Test-time augmentation "
                  "(flips) is reported beside plain accuracy; nothing is chosen on it.", "",
                  "| epochs | run | seed | machine load | wall s | val % | test % | test, flip TTA % |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in runs:
            lines.append(f"| {r['epochs']} | {r['repeat']} | {r.get('seed', 0)} | {r.get('load', 'quiet')} | {r['wall_s']:.0f} | "
                         f"{r['val_acc']:.2f} | {r['test_acc']:.2f} | {r['test_acc_flip_tta']:.2f} |")
        for epochs in sorted({r["epochs"] for r in runs}):
            group = [r for r in runs if r["epochs"] == epochs]
            if len(group) == 1:
                lines.append(f"\n{epochs} epochs: N = 1 so far, no spread yet — repeats: `python benchmarks/teacher.py "
                             f"--part train --epochs {epochs} --repeats 2` on a quiet machine (~{group[0]['wall_s'] / 60 * 2:.0f} min).")
            if len(group) > 1:
                acc = [r["test_acc"] for r in group]
                tta = [r["test_acc_flip_tta"] for r in group]
                quiet = [r["wall_s"] for r in group if r.get("load", "quiet") == "quiet"]
                lines.append(f"\n{epochs} epochs, N = {len(group)} (seeds {', '.join(str(r.get('seed', 0)) for r in group)}): "
                             f"test {statistics.mean(acc):.2f} ± {statistics.stdev(acc):.2f} % (min {min(acc):.2f}, max "
                             f"{max(acc):.2f}); with flip TTA {statistics.mean(tta):.2f} ± {statistics.stdev(tta):.2f} %.")
                goal = 93.5
                verdict = lambda v: "met" if v >= goal else f"missed by {goal - v:.2f} pp"
                lines.append(f"Goal ≥ {goal} % test: without test-time augmentation {verdict(statistics.mean(acc))} "
                             f"(mean); with flips {verdict(statistics.mean(tta))}.")
                if quiet:
                    lines.append(f"Wall time on the quiet machine, N = {len(quiet)}: median {statistics.median(quiet):.0f} s "
                                 f"(min {min(quiet):.0f}, max {max(quiet):.0f}) = {statistics.median(quiet) / 60:.1f} min; "
                                 "the run that shared the cores with the test suite took "
                                 + ", ".join(f"{r['wall_s']:.0f} s" for r in group if r.get("load", "quiet") != "quiet") + ".")
        lines.append("")
    (HERE / "teacher.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["steps", "train", "report"], required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=1, help="seed of the first repeat (the shipped run is seed 0)")
    ap.add_argument("--root", default="runs/teacher-bench")
    args = ap.parse_args()
    if args.part == "steps":
        part_steps(HERE / "teacher_steps.json")
    elif args.part == "report":
        part_report(HERE / "teacher_steps.json", HERE / "teacher_runs.json")
    else:
        part_train(HERE / "teacher_runs.json", args.epochs, args.repeats, Path(args.root), args.first_seed)


if __name__ == "__main__":
    main()
