"""The device-side classifier: the card's preprocessing, the gate's top-1, bad input, the CLI and the app, no torch."""

import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import BLOCK_TORCH, ROOT
from edgekd.convert.runners import Predictor
from edgekd.errors import EdgekdError
from edgekd.runtime import Classifier, Prediction, classify_stream

APP = ROOT / "devices" / "raspberry-pi" / "classify_app.py"


@pytest.mark.parametrize("fmt", ["onnx", "onnx-int8", "tflite", "tflite-int8"])
def test_every_format_scores_what_the_export_gate_scored(exported, fmt):
    clf = Classifier(exported["out"], format=fmt)
    test = exported["test"]
    predicted = np.array([p.index for p in clf.predict(test.images)])
    # the gate's own path on the same images: the card's preprocessing, then the file's runner
    gate = Predictor(exported["out"] / clf.row["file"])(exported["spec"].preprocess(test.images)).argmax(1)
    assert (predicted == gate).all()
    assert 100 * (predicted == test.labels).mean() == pytest.approx(exported["card"]["formats"][fmt]["test_acc"], abs=1e-9)
    assert clf.warnings == []


def test_default_is_an_int8_file_within_the_gate_with_labels_and_probabilities(exported):
    clf = Classifier(exported["out"], top_k=3)
    assert clf.row["int8"] and clf.row["gate"] == "pass"
    pred = clf.predict(exported["test"].images[0])
    assert isinstance(pred, Prediction) and pred.label == f"digit {pred.index}"
    assert len(pred.top_k) == 3 and pred.top_k[0] == (pred.label, pred.probability)
    probs = [p for _, p in pred.top_k]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9
    assert sum(p for _, p in clf.predict(exported["test"].images[:1], top_k=10)[0].top_k) == pytest.approx(1.0)


def test_image_files_grey_alpha_and_other_sizes_take_the_same_path(exported, tmp_path):
    clf = Classifier(exported["out"], format="onnx")
    images = exported["test"].images[:6]
    paths = []
    for i, im in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    from_arrays = [p.index for p in clf.predict(images)]
    assert [p.index for p in clf.predict(paths)] == from_arrays  # PNG is lossless; BGR read back as RGB
    # twice the size, each pixel a 2×2 block: area resizing gives back the very pixels
    big = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)
    assert [p.index for p in clf.predict(list(big))] == from_arrays
    rgba = np.concatenate([images, np.full((*images.shape[:3], 1), 255, np.uint8)], axis=3)
    assert [p.index for p in clf.predict(list(rgba))] == from_arrays
    grey = images[0].mean(axis=2).astype(np.uint8)  # digits are grey already: the same pixels in 3 channels
    assert clf.predict(grey).index == clf.predict(np.repeat(grey[..., None], 3, axis=2)).index


def test_bad_input_and_bad_folders_are_one_line_errors(exported, tmp_path):
    clf = Classifier(exported["out"])
    (tmp_path / "notes.png").write_text("not an image")
    cases = [
        (lambda: clf.predict(tmp_path / "notes.png"), "not an image OpenCV can read"),
        (lambda: clf.predict(tmp_path / "missing.png"), "image not found"),
        (lambda: clf.predict(np.zeros((32, 32, 3), np.float32)), "must be uint8"),
        (lambda: clf.predict(np.zeros((32, 32, 5), np.uint8)), "got shape (32, 32, 5)"),
        (lambda: clf.predict(np.zeros((2, 2, 32, 32, 3), np.uint8)), "array of shape"),
        (lambda: Classifier(tmp_path / "nowhere"), "model folder not found"),
        (lambda: Classifier(tmp_path), "no card.json"),
        (lambda: Classifier(exported["out"], format="coreml"), "has no 'coreml' file"),
    ]
    for call, message in cases:
        with pytest.raises(EdgekdError, match=None) as err:
            call()
        assert message in err.value.message, (message, err.value.message)


def test_a_file_changed_after_export_is_reported_and_a_failed_gate_is_refused(exported, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(exported["out"], copy)
    card = json.loads((copy / "card.json").read_text())
    card["formats"]["onnx"]["sha256"] = "0" * 64
    card["formats"]["tflite-int8"]["gate"] = "fail"
    (copy / "card.json").write_text(json.dumps(card))
    clf = Classifier(copy, format="onnx")
    assert len(clf.warnings) == 1 and "sha256 differs from its card" in clf.warnings[0]
    with pytest.raises(EdgekdError, match="failed the accuracy gate"):
        Classifier(copy, format="tflite-int8")
    assert Classifier(copy).format != "tflite-int8"  # the default skips it


def test_cli_predict_images_and_video_with_json(exported, tmp_path):
    from typer.testing import CliRunner

    from edgekd.cli import app

    images = exported["test"].images[:3]
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for p, im in zip(paths, images):
        cv2.imwrite(str(p), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    out = tmp_path / "p.json"
    res = CliRunner().invoke(app, ["predict", str(exported["out"]), *map(str, paths), "--json", str(out), "--top-k", "2"])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())["predictions"]
    expected = Classifier(exported["out"]).predict(images)
    assert [r["label"] for r in rows] == [p.label for p in expected] and all(len(r["top_k"]) == 2 for r in rows)
    video = _write_video(tmp_path / "clip.avi", exported["test"].images[:12])
    res = CliRunner().invoke(app, ["predict", str(exported["out"]), "--video", str(video), "--max-frames", "5"])
    assert res.exit_code == 0, res.output
    assert res.output.count("frames/s") == 5
    res = CliRunner().invoke(app, ["predict", str(exported["out"])])
    assert res.exit_code == 2 and "image files or --video" in res.output
    res = CliRunner().invoke(app, ["predict", str(exported["out"]), "--video", str(tmp_path / "none.mp4")])
    assert res.exit_code == 2 and "video not found" in res.output


def test_stream_of_a_lossless_video_gives_the_images_labels(exported, tmp_path):
    clf = Classifier(exported["out"], format="onnx")
    images = exported["test"].images[:8]
    video = _write_video(tmp_path / "clip.avi", images)
    got = [r["prediction"].index for r in classify_stream(clf, video)]
    assert got == [p.index for p in clf.predict(images)]
    with pytest.raises(EdgekdError, match="needs --seconds"):
        next(classify_stream(clf, "0"))


def test_device_app_runs_a_video_without_torch(exported, tmp_path):
    video = _write_video(tmp_path / "clip.avi", exported["test"].images[:10])
    out = tmp_path / "app.json"
    proc = subprocess.run([sys.executable, "-c", BLOCK_TORCH, str(APP), str(exported["out"]), str(video),
                           "--json", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["frames"] == 10 and result["frames_per_s"] > 0
    proc = subprocess.run([sys.executable, "-c", BLOCK_TORCH, str(APP), str(tmp_path), str(video)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no card.json" in proc.stderr and "Traceback" not in proc.stderr


def _write_video(path, images_rgb):
    """A lossless (FFV1 in AVI, else uncompressed) video of the images, one per frame."""
    h, w = images_rgb.shape[1:3]
    for codec in ("FFV1", "DIB "):
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 10.0, (w, h))
        if writer.isOpened():
            break
    for im in images_rgb:
        writer.write(cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
