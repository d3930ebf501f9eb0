"""The device side runs without PyTorch: `edgekd bench` in a process where torch cannot be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from bench_models import write_onnx, write_tflite

ROOT = Path(__file__).resolve().parents[1]

# Runs before edgekd is imported: any attempt to import torch (or a torch submodule) fails,
# as on a Pi where it is not installed.
BLOCK_TORCH = textwrap.dedent(
    """
    import sys
    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"No module named {name!r} (blocked by the no-torch test)")
            return None
    sys.meta_path.insert(0, _NoTorch())
    """
)


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code), *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip


def test_bench_runs_with_torch_unimportable(tmp_path):
    onnx = write_onnx(tmp_path / "model.onnx")
    tflite = write_tflite(tmp_path / "model.tflite")
    int8 = write_tflite(tmp_path / "model.int8.tflite", int8=True)
    pt = tmp_path / "teacher.pt"
    pt.write_bytes(b"a PyTorch file this device cannot run")
    out = tmp_path / "r.json"
    code = """
        import sys
        from edgekd.cli import app
        try:
            app(sys.argv[1:], prog_name="edgekd")
        except SystemExit as e:
            assert not [m for m in sys.modules if m == "torch" or m.startswith("torch.")], "torch got imported"
            print("exit", e.code)
    """
    args = ["bench", str(onnx), str(tflite), str(int8), str(pt), "-n", "10", "--warmup", "1", "-t", "1", "--json", str(out)]
    proc = _python(code, *args)
    assert "exit 1" in proc.stdout, proc.stdout + proc.stderr  # 1: the .pt model failed, the others ran
    assert "Traceback" not in proc.stderr, proc.stderr
    data = json.loads(out.read_text())
    status = {Path(r["path"]).name: r for r in data["results"]}
    for name in ("model.onnx", "model.tflite", "model.int8.tflite"):
        assert status[name]["status"] == "ok" and status[name]["stats"]["n"] == 10
    assert "PyTorch is not installed" in status["teacher.pt"]["error"]


def test_device_modules_do_not_import_torch():
    proc = _python(
        """
        import sys
        import edgekd.bench, edgekd.bench.report, edgekd.cli, edgekd.formats
        assert "torch" not in sys.modules
        print("ok")
        """
    )
    assert proc.stdout.strip() == "ok", proc.stderr


def test_an_export_folder_benches_on_a_device_without_torch(tmp_path):
    folder = tmp_path / "export" / "student"
    folder.mkdir(parents=True)
    write_onnx(folder / "model.onnx")
    (folder / "model.pt").write_bytes(b"weights this device cannot run")
    code = """
        import sys
        from edgekd.cli import app
        try:
            app(sys.argv[1:], prog_name="edgekd")
        except SystemExit as e:
            print("exit", e.code)
    """
    proc = _python(code, "bench", str(folder), "-n", "5", "--warmup", "1", "-t", "1", "--json", str(tmp_path / "r.json"))
    assert "exit 0" in proc.stdout, proc.stdout + proc.stderr  # the folder's model.pt is skipped, not a failure
    names = [Path(r["path"]).name for r in json.loads((tmp_path / "r.json").read_text())["results"]]
    assert names == ["model.onnx"]
