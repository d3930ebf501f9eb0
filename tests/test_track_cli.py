"""The track command group: a video path routes to `run`; train writes checkpoints and resumes."""

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekd.cli import app
from tests.conftest import shared_path

runner = CliRunner()


def _video(path, frames, fps=15):
    import cv2

    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (w, h))
    for f in frames:
        wr.write(f)
    wr.release()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from edgekd.track.groundtruth import Motion, face_frame, make_sequence
    from edgekd.track.preprocess import read_image

    img, box = face_frame(read_image(shared_path("faces", "stills", "biden.jpg")))
    seq = make_sequence(img, 5, Motion("shift", fps=15.0, translate=lambda t: np.outer(t * 15, [1.0, 0.5])))
    pts = np.array([[box[0] + 0.3 * box[2], box[1] + 0.3 * box[3]], [box[0] + 0.7 * box[2], box[1] + 0.6 * box[3]]])
    return _video(tmp_path_factory.mktemp("clip") / "clip.avi", list(seq.frames)), pts, seq.true_positions(pts)


def test_video_path_routes_to_run_and_writes_csv(clip, tmp_path):
    video, pts, truth = clip
    out = tmp_path / "tracks.csv"
    args = ["track", str(video), "--points", f"{pts[0, 0]},{pts[0, 1]}", "--points", f"{pts[1, 0]},{pts[1, 1]}",
            "--method", "lk", "--out", str(out), "--overlay", str(tmp_path / "o.mp4")]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 5 * 2
    last = [(float(r["x"]), float(r["y"])) for r in rows if r["frame"] == "4"]
    assert np.allclose(last, truth[4], atol=0.3)
    assert (tmp_path / "o.mp4").stat().st_size > 0
    # the explicit form is the same command
    assert runner.invoke(app, ["track", "run", *args[1:]]).exit_code == 0


def test_subcommands_are_not_mistaken_for_videos():
    for sub in ("eval", "train", "run", "export"):
        r = runner.invoke(app, ["track", sub, "--help"])
        assert r.exit_code == 0 and "Usage" in r.output, r.output


def test_cli_bad_input_is_one_line_exit_2(clip, tmp_path):
    video, pts, _ = clip
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    for args in (
        ["track", str(bad), "--points", "10,10", "--method", "lk"],
        ["track", str(video), "--points", "1e6,3", "--method", "lk"],
        ["track", str(video), "--points", "ten,3", "--method", "lk"],
        ["track", str(video), "--points", f"{pts[0, 0]},{pts[0, 1]}", "--method", "surf"],
    ):
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        assert "error:" in r.output and "Traceback" not in r.output


def test_train_checkpoints_and_resume(tmp_path):
    from edgekd.track.train import TrainConfig, train

    pytest.importorskip("torch")
    data = shared_path("faces", "stills")
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "run"), epochs=1, train_crops=64, val_crops=32, seed=1)
    r1 = train(cfg, progress=False, log=lambda s: None)
    assert (tmp_path / "run" / "dfe_autoencoder.pt").is_file() and (tmp_path / "run" / "train_state.pt").is_file()
    assert r1["val_files"] >= 1 and len(r1["history"]) == 1
    cfg.epochs = 2
    r2 = train(cfg, resume=True, progress=False, log=lambda s: None)
    assert [h["epoch"] for h in r2["history"]] == [1, 2]
    assert r2["history"][0] == r1["history"][0]
    from edgekd.track import create_tracker

    assert create_tracker("dfe", encoder=r2["model"]).radius == 3


def test_train_a_narrower_encoder_and_track_with_it(tmp_path):
    pytest.importorskip("torch")
    import torch

    from edgekd.models.checkpoint import load_model
    from edgekd.track import create_tracker
    from edgekd.track.train import TrainConfig, train

    cfg = TrainConfig(data=str(shared_path("faces", "stills")), out=str(tmp_path / "narrow"), epochs=1, train_crops=64,
                      val_crops=32, val_frames=0, seed=2, channels=[4, 8, 8, 16, 24])
    r = train(cfg, progress=False, log=lambda s: None)
    model, info = load_model(r["model"])
    assert info["config"]["channels"] == [4, 8, 8, 16, 24]
    with torch.inference_mode():  # the encoding has the last width; the context is the recipe's (31 + 2·8)
        assert model.encoder(torch.rand(2, 3, 47 + 6, 47 + 6)).shape == (2, 24, 7, 7)
    assert create_tracker("dfe", encoder=r["model"]).radius == 3


@pytest.mark.parametrize("channels", ["8,16,32", "8,16,0,32,64", "a,b,c,d,e"])
def test_train_rejects_bad_channels_before_reading_data(channels, tmp_path):
    r = runner.invoke(app, ["track", "train", "--data", str(tmp_path / "missing"), "--channels", channels])
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and "Traceback" not in r.output
