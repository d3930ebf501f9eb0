"""Every tracker on a real face moved by a known shift; backends agree; bad input is refused clearly."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekd.errors import EdgekdError
from edgekd.track import METHODS, create_tracker, track_video
from edgekd.track.groundtruth import Motion, make_sequence
from tests.conftest import shared_path

ROOT = Path(__file__).resolve().parents[1]
ENCODER_DIR = ROOT / "edgekd" / "track" / "weights" / "dfe-encoder"


@pytest.fixture(scope="module")
def face():
    from edgekd.track.groundtruth import face_frame
    from edgekd.track.preprocess import read_image, skin_points

    img, box = face_frame(read_image(shared_path("faces", "stills", "obama.jpg")))
    return img, skin_points(box, 6)


@pytest.fixture(scope="module")
def shifted(face):
    img, pts = face
    step = np.array([1.3, -0.6])  # px per frame, sub-pixel on purpose
    seq = make_sequence(img, 4, Motion("shift", fps=1.0, translate=lambda t: np.outer(t, step)))
    return seq, pts, seq.true_positions(pts)


def _kw(method):
    return {"encoder": str(ENCODER_DIR / "model.onnx")} if method == "dfe" else {}


@pytest.mark.parametrize("method", METHODS)
def test_each_method_follows_a_known_shift_on_a_real_face(method, shifted):
    seq, pts, truth = shifted
    pred = track_video(create_tracker(method, **_kw(method)), seq.frames, pts)
    err = np.linalg.norm(pred - truth, axis=-1)[1:]
    tracked = np.isfinite(err)
    assert tracked.mean() >= 0.5, f"{method} lost too many points"
    assert np.median(err[tracked]) < 0.6, f"{method} median error {np.median(err[tracked]):.2f} px"


def test_torch_onnx_and_litert_encoders_agree(face):
    from edgekd.track.backends import load_encoder
    from edgekd.track.preprocess import bgr_to_lab01

    pytest.importorskip("torch")
    img, pts = face
    lab = bgr_to_lab01(img)
    # real skin regions: INT8 was calibrated on faces, random noise would be out of range
    size = load_encoder(ENCODER_DIR / "model.onnx").input_size  # context + 2·radius of the shipped files
    half = size // 2
    x = np.stack([lab[int(y) - half : int(y) + half + 1, int(x) - half : int(x) + half + 1].transpose(2, 0, 1) for x, y in pts[:3]])
    ref = load_encoder(ENCODER_DIR / "model.pt")(x)
    assert ref.shape[:2] == (3, 128) and ref.shape[-1] == size - load_encoder(ENCODER_DIR / "model.pt").context + 1
    scale = np.sqrt((ref**2).mean())
    for name, tol in [("model.onnx", 1e-3), ("model.tflite", 1e-4), ("model.int8.onnx", 0.05), ("model.int8.tflite", 0.05),
                      ("model.int8-mixed.onnx", 0.05), ("model.int8-mixed.tflite", 0.05)]:
        y = load_encoder(ENCODER_DIR / name)(x)
        rel = np.sqrt(((y - ref) ** 2).mean()) / scale
        assert rel < tol, f"{name}: relative RMS difference {rel:.4f}"
        # TFLite files are stored with batch 1: one point at a time must equal all points at once
        assert np.allclose(np.concatenate([load_encoder(ENCODER_DIR / name)(x[i : i + 1]) for i in range(3)]), y, atol=1e-5)


def test_regions_are_cut_from_the_edge_padded_lab_frame(face):
    from edgekd.track.preprocess import bgr_to_lab01

    img, _ = face
    tracker = create_tracker("dfe", encoder=str(ENCODER_DIR / "model.onnx"))
    h, w = img.shape[:2]
    centres = np.array([[w // 2, h // 2], [3, 5], [w - 2, h - 10], [0, h - 1]])  # inside, and over every border
    pad = tracker.size // 2
    padded = np.pad(bgr_to_lab01(img), ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    want = np.stack([padded[cy : cy + tracker.size, cx : cx + tracker.size].transpose(2, 0, 1) for cx, cy in centres])
    assert np.array_equal(tracker._regions(img, centres), want)


def test_torch_and_onnx_trackers_give_the_same_tracks(shifted):
    pytest.importorskip("torch")
    seq, pts, _ = shifted
    a = track_video(create_tracker("dfe", encoder=str(ENCODER_DIR / "model.pt")), seq.frames, pts)
    b = track_video(create_tracker("dfe", encoder=str(ENCODER_DIR / "model.onnx")), seq.frames, pts)
    assert np.allclose(a, b, atol=1e-3, equal_nan=True)


def test_device_side_tracks_without_torch():
    code = (
        "import sys, numpy as np\n"
        "from edgekd.track import create_tracker\n"
        f"t = create_tracker('dfe', encoder=r'{ENCODER_DIR / 'model.int8.onnx'}')\n"
        "f = (np.indices((120, 120)).sum(0) % 7 * 30).astype(np.uint8)\n"
        "t.init(f, [[60.0, 60.0]]); p, ok = t.update(f)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(p, ok)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.parametrize("method", ["dfe", "ncc", "sift", "orb"])
def test_a_lost_point_is_nan_and_stays_lost(method, face):
    img, pts = face
    flat = np.full_like(img, 128)  # nothing to match: the track must be reported lost, not guessed
    tr = create_tracker(method, **_kw(method))
    tr.init(img, pts)
    pos, ok = tr.update(flat)
    assert not ok.any() and np.isnan(pos).all()
    pos, ok = tr.update(img)
    assert not ok.any() and np.isnan(pos).all()


def test_bad_points_and_methods_are_refused_clearly(face):
    img, pts = face
    h, w = img.shape[:2]
    for method in METHODS:
        tr = create_tracker(method, **_kw(method))
        with pytest.raises(EdgekdError, match="outside"):
            tr.init(img, [[w + 5.0, 10.0]])
        with pytest.raises(EdgekdError, match="crop leaves"):
            tr.init(img, [[5.0, h / 2]])
    with pytest.raises(EdgekdError, match="unavailable"):
        create_tracker("surf")
    with pytest.raises(EdgekdError, match="encoder"):
        create_tracker("dfe")
    with pytest.raises(EdgekdError, match="not found"):
        create_tracker("dfe", encoder="missing.onnx")


def test_unreadable_video_is_a_clear_error(tmp_path):
    from edgekd.track.groundtruth import read_video

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(EdgekdError, match="broken.mp4"):
        read_video(bad)
    with pytest.raises(EdgekdError, match="not found"):
        read_video(tmp_path / "missing.mp4")
