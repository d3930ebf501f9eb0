"""The command line end to end on the embedded default, and its handling of bad input."""

import json
import os
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.models import create_model
from edgekd.models.checkpoint import save_model

runner = CliRunner()
TINY = ["--data", "digits", "--train-subset", "300", "--epochs", "1", "--teacher-epochs", "1", "--ig-steps", "2",
        "--threads", "1"]


def test_compress_on_digits_end_to_end_and_resume(tmp_path):
    out, exp = tmp_path / "run", tmp_path / "export"
    args = ["compress", *TINY, "--out", str(out), "--formats", "onnx,onnx-int8", "--name", "tiny"]
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'export_dir = "{exp}"\ngate_pp = 100.0\nmethod = "kd+ig+at"\n')
    r = runner.invoke(app, [*args, "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["method"] == "kd+ig+at" and rep["compression_factor"] == 4.12
    assert rep["teacher"]["params"] == 2_236_682 and rep["student"]["params"] == 543_498
    assert rep["data"]["train_images"] == 300 and 0 <= rep["student"]["test_acc"] <= 100
    assert rep["ig"]["n_steps"] == 2 and (out / "ig-cache" / "manifest.json").exists()
    card = json.loads((exp / "tiny" / "card.json").read_text())
    assert card["formats"]["onnx"]["test_acc"] == pytest.approx(rep["student"]["test_acc"], abs=1e-6)
    assert card["model"]["params"] == rep["student"]["params"]

    # Running it again reuses everything: nothing is retrained.
    before = {p.name: p.stat().st_mtime_ns for p in (out / "teacher.pt", out / "ig-cache" / "maps.npy")}
    r2 = runner.invoke(app, [*args, "--config", str(cfg)])
    assert r2.exit_code == 0, r2.output
    assert {p: (out / p if p == "teacher.pt" else out / "ig-cache" / p).stat().st_mtime_ns for p in before} == before
    assert json.loads((out / "report.json").read_text())["student"]["test_acc"] == rep["student"]["test_acc"]


@pytest.mark.parametrize("extra,message", [
    (["--data", "/nonexistent/cifar.zip"], "dataset not found"),
    (["--cf", "3.0"], "no student near compression factor"),
    (["--method", "kd+magic"], "unknown method"),
])
def test_bad_input_is_one_clear_line(tmp_path, extra, message):
    r = runner.invoke(app, ["compress", *TINY, "--out", str(tmp_path), *extra])
    assert r.exit_code == 2
    assert message in r.output and "Traceback" not in r.output


def test_teacher_of_the_wrong_architecture(tmp_path):
    save_model(tmp_path / "t.pt", create_model("student", cf=54.59), "student")
    torch.save(torch.load(tmp_path / "t.pt", weights_only=True)["state_dict"], tmp_path / "bare.pt")
    r = runner.invoke(app, ["compress", *TINY, "--out", str(tmp_path / "o"), "--teacher", str(tmp_path / "bare.pt")])
    assert r.exit_code == 2 and "does not fit architecture 'mobilenetv2_cifar'" in r.output


def test_export_refuses_a_file_without_its_run(tmp_path):
    (tmp_path / "student.pt").write_bytes(b"garbage")
    r = runner.invoke(app, ["export", str(tmp_path / "student.pt")])
    assert r.exit_code == 2 and "report.json" in r.output


def test_python_dash_m_and_help():
    r = subprocess.run([sys.executable, "-m", "edgekd", "--help"], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0
    for cmd in ("compress", "export", "bench", "track", "train-teacher"):
        assert cmd in r.stdout
