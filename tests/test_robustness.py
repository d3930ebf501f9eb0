"""Nothing silently wrong: damaged caches, full disks, concurrent runs, memory-bounded evaluation, bad flags."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.data import load_dataset
from edgekd.distill import ig as ig_mod
from edgekd.distill.ig import IGCache, IGSettings, precompute_ig
from edgekd.errors import EdgekdError
from edgekd.models import create_model
from edgekd.utils.io import file_lock

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture()
def cache(digits, tmp_path):
    torch.manual_seed(0)
    teacher = create_model("resnet8").eval()
    s = IGSettings(n_steps=2, internal_batch_size=16, batch_size=8)
    c = precompute_ig(teacher, digits.train.images, digits.train.labels, np.arange(40), tmp_path / "ig",
                      digits.mean, digits.std, s, show_progress=False)
    c.load()  # verifies
    return c


def test_flipped_bytes_in_the_maps_are_caught(cache):
    path = cache.dir / "maps.npy"
    data = bytearray(path.read_bytes())
    for i in range(len(data) - 4096, len(data) - 4096 + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(EdgekdError, match="do not match their checksum.*delete"):
        cache.load()


def test_truncated_maps_are_caught(cache):
    path = cache.dir / "maps.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(EdgekdError, match="damaged"):
        cache.load()


@pytest.mark.parametrize("name,content", [("manifest.json", b"{not json"), ("done.npy", b"\x93NUMPY garbage"),
                                          ("indices.npy", b"")])
def test_damaged_files_are_one_line(cache, name, content):
    (cache.dir / name).write_bytes(content)
    with pytest.raises(EdgekdError, match="damaged|lacks|incomplete"):
        cache.load()


def test_missing_checksums_are_caught(cache):
    (cache.dir / "digests.npy").unlink()
    with pytest.raises(EdgekdError, match="lacks digests.npy"):
        cache.load()


def test_nan_maps_are_refused_when_computed(digits, tmp_path, monkeypatch):
    monkeypatch.setattr(ig_mod, "integrated_gradients", lambda *a, **k: torch.full((8, 32, 32), float("nan")))
    with pytest.raises(EdgekdError, match="NaN/inf"):
        precompute_ig(create_model("resnet8"), digits.train.images, digits.train.labels, np.arange(16), tmp_path / "ig",
                      digits.mean, digits.std, IGSettings(n_steps=2, batch_size=8), show_progress=False)


def _run_limited(code: str, limit_bytes: int, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``code`` with a file-size limit: writes past it fail with EFBIG, as on a full disk."""
    body = textwrap.indent(textwrap.dedent(code).strip(), "    ")
    script = "\n".join([
        "import resource, signal, sys",
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)",
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes}))",
        "from edgekd.errors import EdgekdError",
        "try:",
        body,
        "except EdgekdError as exc:",
        "    print('EDGEKD:', exc.message)",
        "    sys.exit(2)",
    ])
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_full_disk_during_ig_is_one_line(tmp_path):
    r = _run_limited("""
        import numpy as np
        from edgekd.data import load_dataset
        from edgekd.distill.ig import IGSettings, precompute_ig
        from edgekd.models import create_model
        d = load_dataset("digits")
        precompute_ig(create_model("resnet8"), d.train.images, d.train.labels, np.arange(1200), "ig", d.mean, d.std,
                      IGSettings(n_steps=2, batch_size=8), show_progress=False)
    """, 1_000_000, tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "EDGEKD: no space left on the disk holding" in r.stdout and "Bus error" not in r.stderr
    assert not (tmp_path / "ig" / "maps.npy").exists()  # nothing half-written kept


def test_full_disk_while_checkpointing_is_one_line(tmp_path):
    r = _run_limited("""
        from edgekd.models import create_model
        from edgekd.models.checkpoint import save_model
        save_model("model.pt", create_model("mobilenetv2_cifar"), "mobilenetv2_cifar")
    """, 500_000, tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "no space left" in r.stdout and "Traceback" not in r.stderr
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".model.pt*"))


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    with file_lock(out / ".compress.lock", wait=False):
        r = runner.invoke(app, ["compress", "--data", "digits", "--out", str(out), "--no-export"])
    assert r.exit_code == 2 and "is in use by edgekd pid" in r.output


def test_evaluation_streams_instead_of_holding_the_split(tmp_path):
    """Scoring 20,000 64×64 images (983 MB as one float32 tensor) stays far below that."""
    script = textwrap.dedent("""
        import resource, numpy as np, torch
        from edgekd.convert.classifier import file_logits, torch_logits
        from edgekd.convert.onnx import export_onnx
        from edgekd.convert.spec import InputSpec
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=4), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                  torch.nn.Linear(4, 10)).eval()
        spec = InputSpec(shape=(1, 3, 64, 64))
        images = np.lib.format.open_memmap("images.npy", mode="w+", dtype=np.uint8, shape=(20000, 64, 64, 3))
        images[:] = 7
        images.flush()
        images = np.load("images.npy", mmap_mode="r")
        export_onnx(net, spec, "m.onnx")
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        a = file_logits("m.onnx", spec, images)
        b = torch_logits(net, spec, images)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(len(a), len(b), (peak - base) / 1024)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    n_a, n_b, growth_mb = r.stdout.split()[-3:]
    assert int(n_a) == int(n_b) == 20000
    assert float(growth_mb) < 400, growth_mb  # the memmapped images count (246 MB), the float copy does not


def test_bench_and_heartrate_flags_are_checked(tmp_path):
    r = runner.invoke(app, ["bench", str(tmp_path / "m.onnx"), "-t", "abc"])
    assert r.exit_code == 2 and "threads takes integers" in r.output and "Traceback" not in r.output
    video = tmp_path / "v.avi"
    video.write_bytes(b"\x00" * 10)
    for fps in ("0", "-5"):
        r = runner.invoke(app, ["heartrate", str(video), "--fps", fps])
        assert r.exit_code == 2 and "--fps must be a frame rate" in r.output


def test_card_of_another_model_is_not_used_silently(tmp_path):
    from edgekd.bench import run_benchmark
    from edgekd.convert.onnx import export_onnx
    from edgekd.convert.spec import InputSpec

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten()).eval()
    export_onnx(net, InputSpec(shape=(1, 3, 28, 28), dynamic_batch=False), tmp_path / "model.onnx")
    (tmp_path / "card.json").write_text(json.dumps({"preprocess": {"size": [32, 32], "layout": "NCHW"},
                                                    "samples": "samples.npy"}))
    np.save(tmp_path / "samples.npy", np.zeros((4, 32, 32, 3), np.uint8))
    run = run_benchmark([tmp_path / "model.onnx"], runs=3, warmup=0, threads=[1])
    assert run.failed and "the card belongs to another model" in run.failed[0].error
    ok = run_benchmark([tmp_path / "model.onnx"], runs=3, warmup=0, threads=[1], use_card=False)
    assert not ok.failed


def test_python_api_takes_objects(digits, tmp_path):
    from edgekd.distill.pipeline import compress

    torch.manual_seed(0)
    teacher = create_model("resnet8").eval()
    student = create_model("resnet8", width=8)
    rep = compress({"out": str(tmp_path / "run"), "method": "kd", "epochs": 1, "train_subset": 300, "export": False,
                    "threads": 1}, teacher=teacher, student=student, data=digits, show_progress=False, log=lambda m: None)
    assert rep["teacher"]["source"] == "python object" and rep["student"]["arch"] == "CifarResNet"
    assert rep["compression_factor"] == round(rep["teacher"]["params"] / rep["student"]["params"], 2)


@pytest.mark.parametrize("kind", ["flat", "csv", "npz", "tar"])
def test_every_data_source_runs_through_compress(tmp_path, monkeypatch, kind):
    from PIL import Image

    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path / "cache"))
    d = load_dataset("digits")
    idx = np.arange(300)
    images, labels = d.train.images[idx], d.train.labels[idx]
    root = tmp_path / "digits"
    for i, (im, lab) in enumerate(zip(images, labels)):
        (root / str(lab)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(root / str(lab) / f"{i}.png")
    source = {"flat": root, "npz": tmp_path / "d.npz", "csv": tmp_path / "d.csv", "tar": tmp_path / "d.tar.gz"}[kind]
    if kind == "npz":
        np.savez(source, images=images, labels=labels)
    elif kind == "csv":
        source.write_text("\n".join(f"digits/{lab}/{i}.png,{lab}" for i, lab in enumerate(labels)))
    elif kind == "tar":
        import tarfile

        with tarfile.open(source, "w:gz") as tar:
            tar.add(root, arcname="digits")
    r = runner.invoke(app, ["compress", "--data", str(source), "--method", "student", "--student-arch", "resnet8",
                            "--epochs", "1", "--threads", "1", "--no-export", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    assert rep["data"]["test_images"] == 60 and rep["data"]["classes"] == [str(i) for i in range(10)]
