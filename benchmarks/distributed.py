"""One process with two threads against two torchrun processes with one thread each, on this 2-core machine;
and a 2-process run whose rank 1 is killed, then resumed by the same command.

    python benchmarks/distributed.py --repeats 2        # speed: writes benchmarks/distributed.{json,md}
    python benchmarks/distributed.py --part resume      # kill + resume: writes benchmarks/distributed_resume.{json,md}

Each measurement is a whole `edgekd compress` (the product's path): CIFAR-10, 2,000 training images, the
shipped teacher, KD+IG with 8 IG steps, the 4.12× student for 2 epochs, no export; a fresh run folder each
time, so the IG maps and the student are computed every time. The two launches alternate (A B A B …) so
drift hits both; the ratio is per pair. Stage timings come from each run's report.json (rank 0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data" / "cifar10-png.zip"
ARGS = ["compress", "--data", str(DATA), "--train-subset", "2000", "--method", "kd+ig", "--ig-steps", "8",
        "--epochs", "2", "--no-export"]


def _run(procs: int, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    threads = 2 // procs
    if procs == 1:
        cmd = [sys.executable, "-m", "edgekd", *ARGS, "--threads", str(threads), "--out", str(out)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs), "-m", "edgekd", *ARGS,
               "--threads", str(threads), "--out", str(out)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(r.stdout[-2000:] + r.stderr[-2000:])
    rep = json.loads((out / "report.json").read_text())
    return {"procs": procs, "threads_per_proc": threads, "wall_s": round(wall, 1), "timings": rep["timings"],
            "test_acc": rep["student"]["test_acc"], "distributed": rep.get("distributed")}


RESUME_ARGS = ["compress", "--data", "digits", "--train-subset", "600", "--ig-steps", "2", "--threads", "1",
               "--student-arch", "resnet8", "--method", "kd+ig", "--no-export", "--epochs", "6", "--teacher-epochs", "1"]


def _epochs_done(ckpt: Path) -> list:
    import torch

    try:
        return json.loads(torch.load(ckpt, weights_only=True)["history"])
    except Exception:  # noqa: BLE001 - being written or not there yet
        return []


def resume_demo() -> None:
    """torchrun, 2 ranks; SIGKILL rank 1 after its second finished epoch; the same command again."""
    import signal

    import psutil

    from edgekd.utils.io import write_json
    from edgekd.utils.system import machine_record

    out = ROOT / "runs" / "distributed-resume"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "edgekd", *RESUME_ARGS,
           "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env)
    ckpt = out / "student.ckpt"
    while len(_epochs_done(ckpt)) < 2:
        if p.poll() is not None:
            raise SystemExit(p.stdout.read()[-3000:])
        time.sleep(0.5)
    before = _epochs_done(ckpt)
    workers = [c for c in psutil.Process(p.pid).children(recursive=True) if "edgekd" in " ".join(c.cmdline())]
    victim = next(w for w in workers if w.environ().get("RANK") == "1")
    killed_at = time.perf_counter() - t0
    victim.send_signal(signal.SIGKILL)
    first_log, _ = p.communicate(timeout=600)
    after_kill = _epochs_done(ckpt)
    t1 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    second_log = r.stdout + r.stderr
    final = json.loads((out / "report.json").read_text())
    history = final["student"]["history"]
    kept = history[: len(after_kill)] == after_kill
    res = {"command": " ".join(["torchrun --nproc-per-node 2 -m edgekd", *RESUME_ARGS, "--out", "runs/distributed-resume"]),
           "machine": machine_record(), "killed_rank": 1, "killed_after_s": round(killed_at, 1),
           "epochs_in_checkpoint_when_killed": len(before), "epochs_in_checkpoint_after_stop": len(after_kill),
           "first_exit_code": p.returncode, "rerun_exit_code": r.returncode,
           "rerun_seconds": round(time.perf_counter() - t1, 1), "final_epochs": len(history),
           "finished_epochs_kept_bit_for_bit": kept, "test_acc": final["student"]["test_acc"],
           "first_log_tail": first_log.strip().splitlines()[-8:], "rerun_log": second_log.strip().splitlines()[-14:]}
    write_json(HERE / "distributed_resume.json", res)
    lines = ["# A 2-process CPU run, one rank killed, resumed by the same command", "",
             f"`python benchmarks/distributed.py --part resume` on {res['machine']['cpu']} "
             f"({res['machine']['cores']} cores). The run: `{res['command']}`.", "",
             f"- Rank 1 got SIGKILL {killed_at:.0f} s in, when the checkpoint held {len(before)} finished epochs.",
             f"- torchrun stopped the whole run (exit code {p.returncode}); the checkpoint then held "
             f"{len(after_kill)} epochs.",
             f"- The same command again (exit code {r.returncode}, {res['rerun_seconds']:.0f} s) resumed and finished "
             f"all {len(history)} epochs; the {len(after_kill)} finished epochs' history is "
             f"{'identical' if kept else 'NOT identical'} (they were not trained again). Test accuracy "
             f"{res['test_acc']:.2f} %.", "",
             "First run, last lines:", "", "```", *res["first_log_tail"], "```", "",
             "Rerun, last lines:", "", "```", *res["rerun_log"], "```", "",
             "The test suite checks the same (`tests/test_distributed.py::test_a_killed_rank_stops_the_run_and_the_rerun_resumes`)."]
    (HERE / "distributed_resume.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not (r.returncode == 0 and kept and len(history) == 6 and p.returncode != 0):
        raise SystemExit("the resume demonstration did not go as it should: see distributed_resume.md")


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from edgekd.utils.io import write_json
    from edgekd.utils.system import machine_record

    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["speed", "resume"], default="speed")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    if args.part == "resume":
        return resume_demo()
    rows = []
    for k in range(args.repeats):
        for procs in (1, 2):
            rows.append({**_run(procs, ROOT / "runs" / "distributed-bench" / f"p{procs}"), "repeat": k})
            print(rows[-1], flush=True)
    pairs = [(a, b) for a, b in zip([r for r in rows if r["procs"] == 1], [r for r in rows if r["procs"] == 2])]
    ratios = {stage: [b["timings"][stage] / a["timings"][stage] for a, b in pairs]
              for stage in ("ig_s", "student_s", "total_s")}
    ratios["wall"] = [b["wall_s"] / a["wall_s"] for a, b in pairs]
    write_json(HERE / "distributed.json", {"rows": rows, "ratios_two_over_one": ratios, "machine": machine_record(),
                                           "command": f"python benchmarks/distributed.py --repeats {args.repeats}"})
    m = machine_record()
    lines = ["# 1 process × 2 threads vs torchrun 2 processes × 1 thread", "",
             f"`python benchmarks/distributed.py --repeats {args.repeats}` on {m['cpu']} ({m['cores']} cores): "
             "a whole `edgekd compress` (CIFAR-10, 2,000 training images, shipped teacher, KD+IG, IG 8 steps, 4.12× "
             "student, 2 epochs, no export) from a fresh folder each time, the two launches alternating.", "",
             "| stage | 1 process (s), median | 2 processes (s), median | ratio 2 ÷ 1 per pair (min … max) |",
             "|---|---|---|---|"]
    for stage, key in (("IG maps (chunks split over ranks)", "ig_s"), ("student training (batch split over ranks)", "student_s"),
                       ("whole run (report)", "total_s")):
        a = statistics.median(r["timings"][key] for r in rows if r["procs"] == 1)
        b = statistics.median(r["timings"][key] for r in rows if r["procs"] == 2)
        lines.append(f"| {stage} | {a:.0f} | {b:.0f} | {statistics.median(ratios[key]):.2f} "
                     f"({min(ratios[key]):.2f} … {max(ratios[key]):.2f}) |")
    lines += ["", f"N = {args.repeats} pairs. Per rank: each of the 2 ranks computes half the IG chunks and takes 32 of "
              "every 64-image global batch; rank 0 alone scores the test set and writes the report (the other waits). "
              "A ratio above 1 means two processes are slower: on one 2-core CPU the gloo all-reduce after every "
              "step of a small model costs more than the second process gains; processes pay off across machines "
              "or GPUs. "
              "Accuracy: " + ", ".join(f"{r['procs']} proc {r['test_acc']:.2f} %" for r in rows) + "."]
    (HERE / "distributed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
