"""The arm64 kernel check (devices/arm64-emulated/check.py), small: one INT8 file, 100 images, under qemu.

It installs this checkout's wheel with its [device] extra in a Debian arm64 root filesystem (built once and cached
in ~/.cache/edgekd, or $EDGEKD_ARM64_ROOTFS) and runs the file there and here. Needs root, qemu-user-static and
mmdebstrap (.ci/run installs them); skipped without them, except under CI, where that is a failure.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

CHECK = ROOT / "devices/arm64-emulated/check.py"


def _needs_emulation():
    missing = [t for t in ("qemu-aarch64-static", "mmdebstrap", "chroot") if not shutil.which(t)]
    reason = (f"arm64 emulation needs {', '.join(missing)}" if missing else
              "arm64 emulation needs root (chroot)" if os.geteuid() != 0 else None)
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason + " (.ci/run installs them)")
        pytest.skip(reason)
    probe = subprocess.run([sys.executable, str(CHECK), "--probe"], capture_output=True, text=True)
    if probe.returncode == 3:  # the kernel or container refuses binfmt_misc: not something a package can fix
        pytest.skip(probe.stderr.strip())


def test_an_int8_file_on_arm64_kernels_agrees_with_x86(exported, tmp_path):
    _needs_emulation()
    out = tmp_path / "arm64.json"
    p = subprocess.run([sys.executable, str(CHECK), str(exported["out"]), "--data", "digits", "--images", "100",
                        "--formats", "onnx-int8", "--no-bench", "--json", str(out), "--work", str(tmp_path / "work")],
                       capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["arm64"]["machine"] == "aarch64" and report["x86"]["machine"] != "aarch64"
    arm, x86 = report["versions_arm64"], report["versions_x86"]
    assert arm["onnxruntime"] == x86["onnxruntime"] and arm["numpy"] == x86["numpy"]  # only the kernels differ
    assert arm["torch importable"] is False  # the wheel's [device] extra runs without torch
    row = report["comparison"]["formats"][exported["out"].name]["onnx-int8"]
    assert row["images"] == 100
    # ONNX Runtime's INT8 kernels round alike on both (bit-identical logits measured on CIFAR-10 students)
    assert row["top1_agreement"] >= 0.99 and row["max_abs_diff"] < 0.05
    assert abs(row["acc_there"] - row["acc_here"]) <= 1.0


def test_a_folder_without_a_card_is_refused_in_one_line(tmp_path):
    p = subprocess.run([sys.executable, str(CHECK), str(tmp_path)], capture_output=True, text=True)
    assert p.returncode != 0 and "not an exported model folder" in p.stderr and "Traceback" not in p.stderr


def test_a_kernel_check_is_recorded_in_the_card_once_per_kernels(tmp_path):
    from edgekd.convert.card import add_kernel_check, write_card

    card = {"name": "m", "gate": {"threshold_pp": 1.0, "split": "test", "passed": True,
                                  "kernels": {"arch": "x86_64", "cpu": "AMD EPYC"}},
            "formats": {"onnx-int8": {"status": "ok", "file": "model.int8.onnx", "bytes": 2048, "test_acc": 90.0}}}
    write_card(tmp_path, card)
    assert "x86_64 kernels" in (tmp_path / "card.md").read_text()
    row = {"images": 100, "top1_agreement": 0.99, "max_abs_diff": 0.31, "acc_here": 90.0, "acc_there": 89.0}
    add_kernel_check(tmp_path, {"kernels": "arm64 (qemu)", "formats": {"tflite-int8": row}})
    card = add_kernel_check(tmp_path, {"kernels": "arm64 (qemu)", "formats": {"tflite-int8": {**row, "max_abs_diff": 0.2}}})
    assert len(card["kernel_checks"]) == 1 and card["kernel_checks"][0]["formats"]["tflite-int8"]["max_abs_diff"] == 0.2
    md = (tmp_path / "card.md").read_text()
    assert "| arm64 (qemu) | tflite-int8 | 100 | 99.00 % | 0.2 | 89.00 | 90.00 |" in md
    with pytest.raises(Exception, match="model card is missing"):
        add_kernel_check(tmp_path / "nothing", {"kernels": "arm64", "formats": {}})


def test_the_dfe_card_records_tracking_on_other_kernels_file_by_file(tmp_path):
    from edgekd.track.export import record_kernel_check
    from edgekd.track.weights import SHIPPED_ENCODER_DIR

    card = json.loads((SHIPPED_ENCODER_DIR / "card.json").read_text())
    card.pop("kernel_checks", None)
    (tmp_path / "card.json").write_text(json.dumps(card))
    row = {"point_frames": 270, "compared": 180, "max_px": 0.39, "mean_px": 0.025, "lost_x86": 90, "lost_arm64": 90}
    check = {"kernels": "arm64 (qemu)", "against": "x86_64 (AMD EPYC)", "video": "clip.mp4"}
    record_kernel_check(tmp_path, {**check, "files": {"model.onnx": {**row, "command": "first"}}})
    record_kernel_check(tmp_path, {**check, "files": {"model.int8-mixed.tflite": {**row, "max_px": 0.5, "command": "second"}},
                                   "decoded_frames": {"frames": 30, "max_level_diff": 2, "mean_level_diff": 0.76,
                                                      "fraction_differing": 0.744}})
    card = json.loads((tmp_path / "card.json").read_text())
    assert len(card["kernel_checks"]) == 1
    files = card["kernel_checks"][0]["files"]
    assert files["model.onnx"]["command"] == "first" and files["model.int8-mixed.tflite"]["command"] == "second"
    md = (tmp_path / "card.md").read_text()
    assert "| model.int8-mixed.tflite | 180 of 270 | 0.5 | 0.025 | 90 | 90 |" in md and "74.4 %" in md
