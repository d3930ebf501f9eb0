"""The GPU protocol's plumbing, on a CPU with a tiny budget (the real run needs a GPU; none is in CI)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_protocol_plumbing_on_cpu(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_protocol.py"), "--smoke", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600, cwd=ROOT,
                       env={**os.environ, "EDGEKD_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["smoke"] and res["device"] == "cpu" and res["seeds"] == 1 and res["epochs"] >= 1
    assert {e["method"] for e in res["analysis"]} == {"student", "kd", "kd+ig"}
    assert 0 <= res["teacher"]["test_acc"] <= 100
