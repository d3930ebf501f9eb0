"""Heart rate end to end: synthetic heartbeat on a real face, bad input, and the device app without torch."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import BLOCK_TORCH, ROOT, shared_path
from edgekd.errors import EdgekdError
from edgekd.heartrate.monitor import HeartRateMonitor, summarize

APP = ROOT / "devices" / "raspberry-pi" / "heart_rate_app.py"



@pytest.fixture(scope="module")
def face_image():
    from edgekd.track.groundtruth import face_frame
    from edgekd.track.preprocess import read_image

    image, _ = face_frame(read_image(shared_path("faces", "stills", "obama.jpg")))
    return image


def test_ibcg_recovers_synthetic_heartbeat_on_real_face(face_image):
    from edgekd.track.groundtruth import heartbeat_motion, make_sequence

    fps = 15.0
    motion = heartbeat_motion(84.0, amplitude_px=0.3, fps=fps, drift_px_per_s=(0.2, 0.5), sway_px=1.0)
    motion.noise_std = 2.0
    seq = make_sequence(face_image, int(12 * fps), motion, seed=0)
    monitor = HeartRateMonitor(fps, method="ibcg", window_s=10, step_s=1, tracker="lk")
    for frame in seq.frames:
        monitor.push(frame)
    assert monitor.face_box is not None and len(monitor.points) >= 10
    summary = summarize(monitor.results)
    assert summary["quality"] == "good"
    assert abs(summary["bpm"] - 84.0) < 2.0
    assert all(r.source == "ibcg" for r in monitor.results)


def test_static_face_gives_no_confident_rate(face_image):
    frames = np.repeat(face_image[None], 150, axis=0).astype(np.float32)
    frames += np.random.default_rng(0).normal(0, 2.0, frames.shape)
    monitor = HeartRateMonitor(15.0, method="fused", window_s=8, step_s=2, tracker="lk")
    for f in np.clip(frames, 0, 255).astype(np.uint8):
        monitor.push(f)
    assert monitor.results and all(r.quality == "low" for r in monitor.results)


def test_no_face_is_a_clear_error():
    noise = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    monitor = HeartRateMonitor(15.0, face_timeout_s=1.0)
    with pytest.raises(EdgekdError, match="no face found"):
        for _ in range(30):
            monitor.push(noise)


def test_dark_region_is_flagged(face_image):
    dark = (face_image // 12).astype(np.uint8)
    monitor = HeartRateMonitor(15.0, method="rppg", window_s=6, step_s=3, roi="full")
    for _ in range(100):
        monitor.push(dark)
    assert monitor.results
    assert all(r.quality == "low" and "too dark" in " ".join(r.flags) for r in monitor.results)


def test_too_short_video_is_refused():
    from edgekd.heartrate.pipeline import estimate_heart_rate

    with pytest.raises(EdgekdError, match="shorter than the 10 s"):
        estimate_heart_rate(shared_path("face-video", "obama2s.mp4"))


def test_report_and_plot_on_real_forehead_video(tmp_path):
    pytest.importorskip("matplotlib")
    from edgekd.heartrate.pipeline import estimate_heart_rate, plot_report, public
    from edgekd.utils.io import write_json

    video = shared_path("rppg-forehead", "India", "video37_forehead.avi")
    report = estimate_heart_rate(video, method="rppg", roi="full", window_s=8, step_s=2, max_seconds=12)
    assert report["frames"] == 180 and report["windows"]
    for w in report["windows"]:
        assert w["source"] in ("rppg", "none") and w["quality"] in ("good", "low")
        assert w["bpm"] is None or 42 <= w["bpm"] <= 210
    write_json(tmp_path / "r.json", public(report))
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["windows"] == len(report["windows"])
    assert plot_report(report, tmp_path / "r.png").stat().st_size > 10_000


def test_device_app_tracks_with_the_shipped_encoder_from_any_folder_without_torch(tmp_path):
    from edgekd.track.weights import SHIPPED_ENCODER_DIR

    video = shared_path("rppg-forehead", "India", "video37_forehead.avi")
    out = tmp_path / "app.json"
    cmd = [sys.executable, "-c", BLOCK_TORCH, str(APP), str(video), "--roi", "full", "--method", "fused",
           "--tracker", "dfe", "--window", "6", "--seconds", "9", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)  # not the checkout
    assert proc.returncode == 0, proc.stderr
    assert "Lucas" not in proc.stderr
    assert f"tracker dfe ({SHIPPED_ENCODER_DIR}" in proc.stdout  # the package's encoder, not a fallback
    assert "frames/s" in proc.stdout
    result = json.loads(out.read_text())
    assert result["performance"]["frames"] == 135 and result["performance"]["frames_per_s"] > 0
    assert len(result["windows"]) == 4

    missing = tmp_path / "missing.onnx"
    proc = subprocess.run(cmd[:-2] + ["--encoder", str(missing)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and f"DFE encoder not found: {missing}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_export_folder_as_encoder_picks_its_fastest_file_within_the_gate():
    from edgekd.heartrate.pipeline import resolve_tracker
    from edgekd.track.weights import SHIPPED_ENCODER_DIR

    method, path, note = resolve_tracker("dfe", SHIPPED_ENCODER_DIR)
    assert method == "dfe" and note == "" and Path(path).parent == SHIPPED_ENCODER_DIR
    assert resolve_tracker("dfe", None)[1] == path  # the default is the shipped folder
    assert resolve_tracker("lk", None) == ("lk", None, "")


def test_device_app_refuses_too_short_clip_without_torch():
    video = shared_path("face-video", "obama2s.mp4")
    proc = subprocess.run([sys.executable, "-c", BLOCK_TORCH, str(APP), str(video), "--tracker", "lk"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "shorter than the 10 s analysis window" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_heartrate_writes_json_and_refuses_bad_input(tmp_path):
    from typer.testing import CliRunner

    from edgekd.cli import app

    video = shared_path("rppg-forehead", "India", "video37_forehead.avi")
    out = tmp_path / "hr.json"
    res = CliRunner().invoke(app, ["heartrate", str(video), "--method", "rppg", "--roi", "full", "--window", "8",
                                   "--step", "2", "--seconds", "12", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "heart rate:" in res.output and out.exists()
    res = CliRunner().invoke(app, ["heartrate", str(video), "--band", "0.7,9"])
    assert res.exit_code == 2 and "too low" in res.output
    res = CliRunner().invoke(app, ["heartrate", str(video), "--method", "magic"])
    assert res.exit_code == 2 and "unknown heart-rate method" in res.output


def test_find_encoder_uses_int8_only_within_the_tracking_gate(tmp_path):
    from edgekd.heartrate.pipeline import find_encoder

    for name in ("model.onnx", "model.tflite", "model.int8.tflite", "model.int8-mixed.onnx"):
        (tmp_path / name).write_bytes(b"x")
    assert find_encoder(tmp_path).name == "model.tflite"  # no tracking results: float
    row = lambda px: {"mean_px": px}  # noqa: E731
    card = {"tracking": {"model.tflite (litert)": row(1.70), "model.onnx (onnxruntime)": row(1.70),
                         "model.int8.tflite (litert)": row(2.10), "model.int8-mixed.onnx (onnxruntime)": row(1.78)}}
    (tmp_path / "card.json").write_text(json.dumps(card))
    assert find_encoder(tmp_path).name == "model.int8-mixed.onnx"  # full INT8 adds 0.4 px: skipped
    card["tracking"]["model.int8.tflite (litert)"] = row(1.75)
    (tmp_path / "card.json").write_text(json.dumps(card))
    assert find_encoder(tmp_path).name == "model.int8.tflite"
    card["int8_gate"] = {"files": {"model.int8.tflite": {"passes": False}, "model.int8-mixed.onnx": {"passes": True}}}
    (tmp_path / "card.json").write_text(json.dumps(card))
    assert find_encoder(tmp_path).name == "model.int8-mixed.onnx"  # the gate verdict wins over raw means
