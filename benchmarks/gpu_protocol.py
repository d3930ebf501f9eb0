"""The paper's question on one GPU in about 12 minutes: fast teacher, then Student / KD / KD+IG students.

    bash benchmarks/gpu_protocol.sh                      # on a machine with a CUDA GPU (12-minute budget)
    bash benchmarks/gpu_protocol.sh --recipe paper       # the paper's student recipe instead of the converged one
    python benchmarks/gpu_protocol.py --smoke            # plumbing check on a CPU (digits, tiny budget)

``--recipe cpu`` (the default) trains the students with ``edgekd compress --preset cpu``'s recipe
(airbench's optimiser and schedule, KD as function matching, an airbench ×0.5 student, IG steps
chosen by completeness), up to 40 epochs; ``--recipe paper`` with the paper's (below), up to 100.

Steps, all through the product's own functions (the CLI's ``train-teacher`` and ``compress``):
1. the airbench teacher with its fast recipe (data on the GPU, bf16 autocast);
2. a timing probe of one student epoch, from which the epochs and seeds that fit the remaining time
   are chosen (the paper: 100 epochs; never more);
3. Student, KD and KD+IG with the chosen recipe (paper: Adam 1e-3, batch 64, α 0.01, T 2.5, p 0.1,
   IG 50 steps), same seeds for every method (paired);
4. ``results.json`` with the accuracies, the epochs and seeds that fit, timings and the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import torch

    from edgekd.distill.pipeline import compress, train_teacher
    from edgekd.distill.experiments.report import aggregate
    from edgekd.utils.io import write_json
    from edgekd.utils.system import machine_record

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="cifar10", help="cifar10 (download) or ../shared/data/cifar10-png.zip")
    ap.add_argument("--minutes", type=float, default=12.0, help="the whole protocol's time budget")
    ap.add_argument("--out", default="runs/gpu-protocol")
    ap.add_argument("--smoke", action="store_true", help="CPU plumbing check: digits, 1-epoch budget")
    ap.add_argument("--recipe", choices=["cpu", "paper"], default="cpu",
                    help="students: the converged fast recipe (--preset cpu) or the paper's")
    args = ap.parse_args()
    t_start = time.perf_counter()
    budget_s = args.minutes * 60
    out = Path(args.out)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.smoke:
        data, teacher_epochs, probe_subset, max_epochs, ig_steps = "digits", 1, 200, 1, 2
    else:
        data, teacher_epochs, probe_subset = args.data, 10, 0
        max_epochs, ig_steps = (100, 50) if args.recipe == "paper" else (40, 0)
    if device == "cpu" and not args.smoke:
        raise SystemExit("no CUDA GPU visible: run with --smoke for the CPU plumbing check")
    # students start at random, as the paper's do (the cpu preset starts them from the teacher's channels, which
    # would confound what KD and IG add)
    common = dict(data=data, device=device, amp="auto", threads=0 if device == "cuda" else 1, export=False,
                  preset=args.recipe, train_subset=probe_subset, student_init="random")
    teacher = train_teacher({**common, "teacher_arch": "airbench", "teacher_recipe": "fast",
                             "teacher_epochs": teacher_epochs, "out": str(out / "teacher")}, show_progress=False)
    print(f"teacher: test {teacher['test_acc']:.2f}% ({teacher['seconds']:.0f} s)", flush=True)
    teacher_path = str(out / "teacher" / "teacher.pt")

    # probe: one epoch of the KD+IG student (the costliest method) with its IG maps computed on the way
    probe = compress({**common, "teacher": teacher_path, "method": "kd+ig", "epochs": 1, "ig_steps": ig_steps,
                      "seed": 1000, "out": str(out / "probe")}, show_progress=False, log=lambda m: None)
    epoch_s = probe["timings"]["student_s"]
    left = budget_s - (time.perf_counter() - t_start) - 60  # keep a minute for evaluation and writing
    per_triple = 3 * epoch_s  # Student, KD and KD+IG
    epochs = int(max(1, min(max_epochs, left / per_triple)))
    seeds = 1 if args.smoke else int(max(1, min(5, left // (per_triple * epochs))))
    print(f"one KD+IG epoch {epoch_s:.0f} s → {epochs} epochs × {seeds} seed(s) fit the budget", flush=True)
    runs_dir = out / "ablation"
    for seed in range(seeds):
        for method in ("student", "kd", "kd+ig"):
            rep = compress({**common, "teacher": teacher_path, "method": method, "epochs": epochs, "ig_steps": ig_steps,
                            "seed": seed, "out": str(runs_dir / f"{method.replace('+', '-')}_seed{seed}"),
                            "notes": {"variant": "truncated" if args.recipe == "paper" else "airbench_x0_5",
                                      "main": True}}, show_progress=False, log=lambda m: None)
            print(f"{method} seed {seed}: test {rep['student']['test_acc']:.2f}%", flush=True)
    summary = aggregate(runs_dir, plots=False)
    result = {"teacher": {k: teacher.get(k) for k in ("val_acc", "test_acc", "test_acc_flip_tta", "seconds")},
              "recipe": args.recipe, "epochs": epochs, "seeds": seeds, "probe_epoch_s": epoch_s, "budget_minutes": args.minutes,
              "wall_s": round(time.perf_counter() - t_start, 1), "device": device,
              "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None, "machine": machine_record(),
              "analysis": summary["analysis"], "markdown": summary["markdown"], "smoke": args.smoke}
    write_json(out / "results.json", result)
    print(summary["markdown"])
    print(f"wrote {out / 'results.json'} ({result['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
