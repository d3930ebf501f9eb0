"""Quick preset on the shared CIFAR-10: one seed each of Student, KD and KD+IG.

    python benchmarks/quick_cifar10.py --data ../shared/data/cifar10-png.zip

Runs the real CLI (``edgekd compress``) three times. The first run trains the teacher;
the others reuse it with ``--teacher``. Only KD+IG needs the IG maps. The KD+IG student
is exported (it feeds benchmarks/export_cifar10.md). Writes quick_cifar10.json and .md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from edgekd.utils.system import machine_record  # noqa: E402


def run(cmd: list[str]) -> float:
    print("$", " ".join(cmd), flush=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/cifar10-png.zip")
    ap.add_argument("--runs", default="runs/quick-cifar10")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    base = Path(args.runs)
    common = ["edgekd", "compress", "--preset", "quick", "--data", args.data, "--threads", str(args.threads)]
    teacher = base / "student" / "teacher.pt"
    rows = []
    for method in ("student", "kd", "kd+ig"):
        out = base / method
        cmd = common + ["--method", method, "--out", str(out)]
        if method != "student":
            cmd += ["--teacher", str(teacher)]
        cmd += ["--export", "--name", "cifar10-quick-kd-ig"] if method == "kd+ig" else ["--no-export"]
        wall = run(cmd)
        rep = json.loads((out / "report.json").read_text())
        rows.append({"method": method, "command": " ".join(cmd), "wall_s": round(wall, 1), "report": rep})
    result = {"machine": machine_record(), "rows": rows}
    (HERE / "quick_cifar10.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps([{k: r[k] for k in ("method", "wall_s")} for r in rows]))


if __name__ == "__main__":
    main()
