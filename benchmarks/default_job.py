"""The README's main job, `edgekd compress` with no arguments, timed as a whole process.

    python benchmarks/default_job.py --repeats 3     # writes benchmarks/default_job.{json,md} and default_job/card.*

Each repeat runs the exact command a new user runs, from an empty run folder and an empty dataset cache
(`EDGEKD_CACHE` pointed at a fresh folder), under /usr/bin/time -v for wall time and peak memory. Run it
on a quiet machine: the figure is the target "≤ 3 minutes on 2 cores".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _time_v(stderr: str) -> dict:
    def grab(label):
        m = re.search(rf"{label}: (.+)", stderr)
        return m.group(1).strip() if m else None

    wall = grab(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\)")
    parts = [float(x) for x in wall.split(":")]
    seconds = parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) == 3 else 0)
    return {"wall_s": seconds, "user_s": float(grab("User time \\(seconds\\)")),
            "sys_s": float(grab("System time \\(seconds\\)")), "peak_rss_mb": int(grab("Maximum resident set size \\(kbytes\\)")) / 1024}


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from edgekd.utils.io import write_json
    from edgekd.utils.system import machine_record

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for k in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "EDGEKD_CACHE": str(Path(tmp) / "cache")}
            r = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "edgekd", "compress"], cwd=tmp, env=env,
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(r.stdout[-3000:] + r.stderr[-3000:])
            rep = json.loads((Path(tmp) / "runs" / "compress" / "report.json").read_text())
            rows.append({**_time_v(r.stderr), "timings": rep["timings"], "student_test_acc": rep["student"]["test_acc"],
                         "teacher_test_acc": rep["teacher"]["test_acc"],
                         "gate_passed": rep["export"]["gate_passed"], "stdout_lines": len(r.stdout.splitlines())})
            if k == 0:
                dest = HERE / "default_job"
                dest.mkdir(exist_ok=True)
                card_dir = Path(rep["export"]["dir"])
                card_dir = card_dir if card_dir.is_absolute() else Path(tmp) / card_dir
                for f in ("card.md", "card.json"):
                    shutil.copy(card_dir / f, dest / f)
                (dest / "output.txt").write_text(r.stdout)
            print(rows[-1], flush=True)
    walls = [r["wall_s"] for r in rows]
    m = machine_record()
    write_json(HERE / "default_job.json", {"rows": rows, "machine": m, "command": "edgekd compress"})
    stages = {s: statistics.median(r["timings"].get(s, 0) for r in rows) for s in rows[0]["timings"]}
    (HERE / "default_job.md").write_text(
        "# The main job: `edgekd compress` (no arguments)\n\n"
        f"`python benchmarks/default_job.py --repeats {args.repeats}` on {m['cpu']} ({m['cores']} cores, quiet: nothing "
        "else ran), each from an empty run folder and dataset cache, timed by /usr/bin/time -v.\n\n"
        f"- wall time: median **{statistics.median(walls):.0f} s** (min {min(walls):.0f}, max {max(walls):.0f}), N = "
        f"{len(rows)}; target ≤ 180 s\n"
        f"- peak RSS: {max(r['peak_rss_mb'] for r in rows):.0f} MB\n"
        f"- stages (median s): " + ", ".join(f"{k} {v:.0f}" for k, v in stages.items()) + "\n"
        f"- result: teacher {rows[0]['teacher_test_acc']:.2f} %, student {rows[0]['student_test_acc']:.2f} % on digits' "
        f"359 test images; every format passed the gate: {all(r['gate_passed'] for r in rows)}\n"
        f"- what it prints: default_job/output.txt ({rows[0]['stdout_lines']} lines, no third-party logs); "
        "the card: default_job/card.md\n")
    print((HERE / "default_job.md").read_text())


if __name__ == "__main__":
    main()
