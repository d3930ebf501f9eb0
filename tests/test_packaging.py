"""The wheel carries what a device needs (the DFE encoder, the teacher, the bench profiles), and it works from it."""

import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (path,) = out.glob("edgekd-*.whl")
    return path


def test_wheel_carries_the_encoder_teacher_and_profiles_but_no_pickles(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    encoder = "edgekd/track/weights/dfe-encoder/"
    for f in ("card.json", "card.md", "model.onnx", "model.int8.onnx", "model.int8-mixed.onnx", "model.tflite",
              "model.int8.tflite", "model.int8-mixed.tflite"):
        assert encoder + f in names, f
    assert encoder + "model.pt" not in names  # a torch pickle: the device has no torch
    assert {"edgekd/models/weights/airbench-cifar10.safetensors", "edgekd/models/weights/airbench-cifar10.json",
            "edgekd/bench/profiles/raspberry-pi-5.toml"} <= names
    assert not any(n.endswith((".pt", ".pth", ".ckpt")) for n in names)


def test_heart_rate_from_the_wheel_finds_its_encoder_in_an_empty_folder_without_torch(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    empty = tmp_path / "empty"
    empty.mkdir()
    script = f"""
import sys
sys.path.insert(0, {str(site)!r})
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked")
sys.meta_path.insert(0, BlockTorch())
import edgekd
from edgekd.heartrate.pipeline import resolve_tracker
method, path, note = resolve_tracker("dfe", None)
print(edgekd.__file__)
print(method, path, note)
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=empty, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    package_file, line = proc.stdout.strip().splitlines()
    assert package_file.startswith(str(site))  # the wheel's copy, not the checkout
    method, path = line.split()[:2]
    assert method == "dfe" and path.startswith(str(site / "edgekd" / "track" / "weights" / "dfe-encoder"))
