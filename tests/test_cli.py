"""The command line end to end (the embedded default and a user's own models and data) and its bad-input handling."""

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
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
    out = tmp_path / "run"
    args = ["compress", *TINY, "--out", str(out), "--formats", "onnx,onnx-int8", "--name", "tiny", "--qat", "auto",
            "--qat-steps", "10"]
    cfg = tmp_path / "run.toml"
    cfg.write_text('gate_pp = 100.0\nmethod = "kd+ig+at"\n')
    r = runner.invoke(app, [*args, "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    t, s = rep["teacher"], rep["student"]
    assert rep["method"] == "kd+ig+at" and t["arch"] == "airbench" and s["params"] == 543_498
    assert rep["compression_factor"] == round(t["params"] / s["params"], 2)  # against the real teacher
    assert rep["compute_ratio"] == round(t["macs"] / s["macs"], 2) and s["macs"] == 58_696_640
    assert rep["attention_pairs"] and all(len(p) == 2 for p in rep["attention_pairs"])
    assert rep["data"]["train_images"] == 300 and 0 <= s["test_acc"] <= 100
    assert rep["ig"]["n_steps"] == 2 and (out / "ig-cache" / "manifest.json").exists()
    card = json.loads((out / "export" / "tiny" / "card.json").read_text())  # under the run folder
    assert card["formats"]["onnx"]["test_acc"] == pytest.approx(s["test_acc"], abs=1e-6)
    assert card["model"]["params"] == s["params"]
    qat = card["formats"]["onnx-int8"]["qat"]  # the automatic fallback: QAT only below the agreement target
    below = qat["post-training"]["agreement"] < 0.997
    assert qat["status"] in (("shipped", "not better") if below else ("not needed",)), qat
    assert not below or qat["steps"] == 10

    # Running it again reuses everything: nothing is retrained.
    before = {p.name: p.stat().st_mtime_ns for p in (out / "teacher.pt", out / "ig-cache" / "maps.npy")}
    r2 = runner.invoke(app, [*args, "--config", str(cfg)])
    assert r2.exit_code == 0, r2.output
    assert {p: (out / p if p == "teacher.pt" else out / "ig-cache" / p).stat().st_mtime_ns for p in before} == before
    assert json.loads((out / "report.json").read_text())["student"]["test_acc"] == s["test_acc"]

    # The student exports standalone from its file alone (no report.json needed).
    (out / "report.json").unlink()
    r3 = runner.invoke(app, ["export", str(out / "student.pt"), "--formats", "onnx", "--export-dir", str(tmp_path / "e")])
    assert r3.exit_code == 0, r3.output
    card = json.loads(next((tmp_path / "e").glob("*/card.json")).read_text())
    assert card["selection"]["split"].startswith("the run's validation split")
    r4 = runner.invoke(app, ["export", str(out / "student.pt"), "--qat", "sometimes"])
    assert r4.exit_code != 0 and "unknown --qat" in r4.output


def _image_folder(cifar_zip, dest, classes=("automobile", "frog", "ship"), n_train=150, n_val=30):
    """A real train/ + val/ ImageFolder of CIFAR-10 photos (32×32, resized to 64×64 by --image-size)."""
    counts = {}
    with zipfile.ZipFile(cifar_zip) as z:
        for name in z.namelist():
            parts = name.split("/")
            if len(parts) != 4 or parts[1] != "train" or parts[2] not in classes:
                continue
            k = counts.get(parts[2], 0)
            if k >= n_train + n_val:
                continue
            counts[parts[2]] = k + 1
            split = "train" if k < n_train else "val"
            (dest / split / parts[2]).mkdir(parents=True, exist_ok=True)
            (dest / split / parts[2] / parts[3]).write_bytes(z.read(name))
    return dest


USER_NETS = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.short(x))


class ResNet18Style(nn.Module):
    """ResNet-18's layout (2-2-2-2 basic blocks), narrow, for 64x64 inputs."""

    def __init__(self, num_classes=10, width=16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        chans, layers, cin = [width, 2 * width, 4 * width, 8 * width], [], width
        for i, c in enumerate(chans):
            layers.append(nn.Sequential(Block(cin, c, 1 if i == 0 else 2), Block(c, c, 1)))
            cin = c
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.head(x.mean((2, 3)))


def resnet18_style(num_classes=10, width=16):
    return ResNet18Style(num_classes, width)
'''


def test_bring_your_own_teacher_student_and_data(cifar_zip, tmp_path, monkeypatch):
    """From the CLI alone: a teacher in the user's own file, a width-scaled MobileNetV2 student, kd+ig+at with
    attention pairs found across the two architectures, 64×64 images from a train/ + val/ folder, all four formats
    through the INT8 gate (3 pp here: with 90 test images one image is 1.1 pp)."""
    data = _image_folder(cifar_zip, tmp_path / "photos")
    (tmp_path / "mynets.py").write_text(USER_NETS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    r = runner.invoke(app, [
        "compress", "--data", str(data), "--image-size", "64", "--teacher-arch", "mynets:resnet18_style",
        "--teacher-kwargs", "width=24", "--teacher-epochs", "15", "--student-arch", "mobilenetv2_cifar",
        "--student-kwargs", "width_mult=0.5,stem_stride=2,stage2_stride=2", "--method", "kd+ig+at",
        "--epochs", "15", "--lr", "5e-3", "--batch-size", "32", "--ig-steps", "4", "--threads", "1",
        "--gate-pp", "3", "--out", str(out), "--name", "byo"])
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["data"]["image_size"] == [64, 64] and rep["data"]["classes"] == ["automobile", "frog", "ship"]
    assert rep["data"]["validation"] == "the data set's own validation split" and rep["data"]["val_images"] == 90
    assert rep["student"]["test_acc"] > 50  # it learned (chance: 33 %)
    assert rep["teacher"]["arch"] == "mynets:resnet18_style" and rep["student"]["arch"] == "mobilenetv2_cifar"
    pairs = rep["attention_pairs"]
    assert pairs and all(t.startswith(("stem", "layer")) and s.startswith("features.") for s, t in pairs)
    assert rep["compression_factor"] == round(rep["teacher"]["params"] / rep["student"]["params"], 2) > 1.5
    card = json.loads((out / "export" / "byo" / "card.json").read_text())
    assert {k for k, v in card["formats"].items() if v["status"] == "ok"} == {"onnx", "onnx-int8", "tflite", "tflite-int8"}
    assert card["gate"]["passed"] and card["preprocess"]["shape"] == [1, 3, 64, 64]


@pytest.mark.parametrize("extra,message", [
    (["--data", "/nonexistent/cifar.zip"], "dataset not found"),
    (["--cf", "3.0"], "no student near compression factor"),
    (["--method", "kd+magic"], "unknown method"),
    (["--teacher-epochs", "-1"], "teacher_epochs must be ≥ 1"),
    (["--amp", "fp8"], "unknown amp"),
    (["--student-arch", "student", "--student-kwargs", "width_mult=0.5"], "does not take argument"),
    (["--teacher-arch", "nosuchpkg.mod:net"], "cannot import"),
])
def test_bad_input_is_one_clear_line(tmp_path, extra, message):
    r = runner.invoke(app, ["compress", *TINY, "--out", str(tmp_path), *extra])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("toml,message", [
    ('epochs = "three"', "epochs must be an integer"),
    ("epochs = 2.7", "epochs must be an integer"),
    ('export = "no"', "export must be true or false"),
    ('lr = "fast"', "lr must be a number"),
    ("lr = -1.0", "lr must be > 0"),
    ("ig_p = 1.5", "ig_p must be ≤ 1"),
    ('optimizer = "rmsprop"', "unknown optimizer"),
    ("magic_setting = 1", "unknown setting(s) in config file: magic_setting"),
    ("mean = [0.5, 0.5]", "mean must be three numbers"),
])
def test_typed_settings_fail_before_any_work(tmp_path, toml, message):
    cfg = tmp_path / "run.toml"
    cfg.write_text(toml + "\n")
    r = runner.invoke(app, ["compress", "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and message in r.output, r.output
    assert not (tmp_path / "o" / "teacher.ckpt").exists()


def test_teacher_of_the_wrong_architecture_or_role(tmp_path):
    save_model(tmp_path / "t.pt", create_model("student", cf=54.59), "student")
    torch.save(torch.load(tmp_path / "t.pt", weights_only=True)["state_dict"], tmp_path / "bare.pt")
    r = runner.invoke(app, ["compress", *TINY, "--out", str(tmp_path / "o"), "--teacher", str(tmp_path / "bare.pt"),
                            "--teacher-arch", "mobilenetv2_cifar"])
    assert r.exit_code == 2 and "does not fit architecture 'mobilenetv2_cifar'" in r.output
    save_model(tmp_path / "s.pt", create_model("student", cf=54.59), "student", meta={"role": "student"})
    r = runner.invoke(app, ["compress", *TINY, "--out", str(tmp_path / "o2"), "--teacher", str(tmp_path / "s.pt")])
    assert r.exit_code == 2 and "is a student written by edgekd compress" in r.output
    save_model(tmp_path / "c100.pt", create_model("student", cf=54.59, num_classes=100), "student")
    r = runner.invoke(app, ["compress", *TINY, "--out", str(tmp_path / "o3"), "--teacher", str(tmp_path / "c100.pt")])
    assert r.exit_code == 2 and "predicts 100 classes but digits has 10" in r.output


def test_corrupt_checkpoint_is_one_line(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "teacher.ckpt").write_bytes(b"PK\x03\x04 truncated")
    r = runner.invoke(app, ["compress", *TINY, "--out", str(out)])
    assert r.exit_code == 2 and "checkpoint" in r.output and "unreadable" in r.output and "Traceback" not in r.output


def test_export_needs_to_know_the_input_and_a_held_out_split(tmp_path):
    s = create_model("student", cf=54.59)
    torch.save(s.state_dict(), tmp_path / "bare.pt")
    r = runner.invoke(app, ["export", str(tmp_path / "bare.pt"), "--data", "digits"])
    assert r.exit_code == 2 and "plain state_dict" in r.output and "architecture" in r.output
    r = runner.invoke(app, ["export", str(tmp_path / "bare.pt"), "--arch", "student", "--arch-kwargs", "cf=54.59",
                            "--data", "digits"])
    assert r.exit_code == 2 and "--input-range 0,1" in r.output
    r = runner.invoke(app, ["export", str(tmp_path / "bare.pt"), "--arch", "student", "--arch-kwargs", "cf=54.59",
                            "--data", "digits", "--input-range", "0,1"])
    assert r.exit_code == 2 and "trained elsewhere" in r.output and "--select-split" in r.output
    (tmp_path / "student.pt").write_bytes(b"garbage")
    r = runner.invoke(app, ["export", str(tmp_path / "student.pt")])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_help_shows_defaults_and_python_dash_m():
    r = subprocess.run([sys.executable, "-m", "edgekd", "compress", "--help"], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0
    for text in ("[default: quick", "--teacher-arch", "--student-arch", "--image-size", "runs/compress"):
        assert text in r.stdout, text
    r = subprocess.run([sys.executable, "-m", "edgekd", "--help"], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "200"})
    for cmd in ("compress", "export", "bench", "track", "train-teacher", "models"):
        assert cmd in r.stdout


def test_every_command_the_readme_shows_exists():
    """Each `edgekd …` line in the README's code blocks names a real command (its --help works)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = re.findall(r"```[^\n]*\n(.*?)```", readme, flags=re.S)
    commands = set()
    for line in (ln.strip().removeprefix("$ ") for b in blocks for ln in b.splitlines()):
        if not line.startswith("edgekd "):
            continue
        words = []
        for token in line.split()[1:]:
            if not re.fullmatch(r"[a-z][a-z0-9-]*", token):
                break
            words.append(token)
        commands.add(tuple(words))
    assert len(commands) > 15  # the README shows the whole pipeline
    for words in sorted(commands):
        r = runner.invoke(app, [*words, "--help"])
        assert r.exit_code == 0, f"README shows `edgekd {' '.join(words)}`, which fails: {r.output[-400:]}"
