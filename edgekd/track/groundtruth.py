"""Test sequences with exactly known motion, made from real face images.

A sequence moves a real photograph by a known geometric warp per frame — translation,
rotation, scale about the image centre, plus an optional smooth non-rigid deformation —
and optionally changes its appearance (illumination gain and gradient, noise, blur).
Because the warp is known, the true position of every point in every frame is known
exactly: :meth:`Sequence.true_positions`.

Heartbeat-like motion (for imaging ballistocardiography)::

    from edgekd.track.groundtruth import heartbeat_motion, make_sequence
    motion = heartbeat_motion(rate_bpm=72, amplitude_px=0.3, fps=30, drift_px_per_s=(0.0, 1.0))
    seq = make_sequence(image_bgr, n_frames=300, motion=motion, seed=0)
    seq.frames                  # (T, H, W, 3) uint8
    seq.true_positions(points)  # (T, P, 2) float: where each (x, y) of frame 0... moved
    motion.vertical(seq.times)  # the periodic vertical displacement alone (px)

Positions are in frame coordinates; frame 0 is the image warped by the motion at t=0
(identity for every built-in motion except heartbeat's phase, which starts at 0 too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgekd.errors import EdgekdError
from edgekd.track.preprocess import as_bgr, cv2_module, detect_faces, jpeg_roundtrip, read_image, skin_points

TimeFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class Motion:
    """A motion + appearance change, as functions of time in seconds (vectorised over arrays)."""

    name: str
    fps: float = 30.0
    translate: TimeFn | None = None  # t → (len(t), 2) px
    rotate_deg: TimeFn | None = None  # t → degrees about the image centre
    scale: TimeFn | None = None  # t → factor about the image centre
    warp_px: float = 0.0  # peak amplitude of a smooth non-rigid deformation
    warp_hz: float = 0.5
    gain: TimeFn | None = None  # t → multiplicative brightness, (T,) for all channels or (T, 3) per BGR channel
    gradient: float = 0.0  # brightness ramp across the image (fraction, left → right), grows with t
    noise_std: float = 0.0  # additive Gaussian noise on 0..255 values
    blur_sigma: float = 0.0
    perspective: TimeFn | None = None  # t → (T, 2) projective terms (per px, about the centre): out-of-plane-like foreshortening
    shading: Callable | None = None  # (t, X, Y) → multiplicative light map; X, Y in [−0.5, 0.5] across the frame
    motion_blur: float = 0.0  # exposure as a fraction of the frame interval: blur along each frame's image motion
    jpeg_quality: int | None = None  # every frame JPEG-encoded at this quality
    codec: str | None = None  # the whole sequence through a video codec (FourCC, e.g. "mp4v") and decoded again
    info: dict = field(default_factory=dict)

    def matrices(self, t: np.ndarray, centre) -> np.ndarray:
        """(T, 3, 3) maps from image coordinates to frame coordinates."""
        t = np.asarray(t, float)
        n = len(t)
        tr = np.zeros((n, 2)) if self.translate is None else np.asarray(self.translate(t), float).reshape(n, 2)
        ang = np.zeros(n) if self.rotate_deg is None else np.broadcast_to(self.rotate_deg(t), (n,))
        sc = np.ones(n) if self.scale is None else np.broadcast_to(self.scale(t), (n,))
        cx, cy = centre
        out = np.zeros((n, 3, 3))
        a = np.deg2rad(ang)
        c, s = sc * np.cos(a), sc * np.sin(a)
        out[:, 0, 0], out[:, 0, 1], out[:, 1, 0], out[:, 1, 1] = c, -s, s, c
        out[:, 0, 2] = cx - c * cx + s * cy + tr[:, 0]
        out[:, 1, 2] = cy - s * cx - c * cy + tr[:, 1]
        out[:, 2, 2] = 1.0
        if self.perspective is not None:
            # P = T(c) · [[1,0,0],[0,1,0],[px,py,1]] · T(−c): foreshortening about the centre, the similarity after it
            pp = np.asarray(self.perspective(t), float).reshape(n, 2)
            proj = np.tile(np.eye(3), (n, 1, 1))
            proj[:, 2, 0], proj[:, 2, 1] = pp[:, 0], pp[:, 1]
            shift, back = np.eye(3), np.eye(3)
            shift[:2, 2], back[:2, 2] = (-cx, -cy), (cx, cy)
            out = out @ (back @ proj @ shift)
        return out

    def vertical(self, t: np.ndarray) -> np.ndarray:
        """The periodic vertical component alone (heartbeat motions), px."""
        fn = self.info.get("vertical")
        return np.zeros(len(np.asarray(t))) if fn is None else fn(np.asarray(t, float))


@dataclass
class Sequence:
    frames: np.ndarray  # (T, H, W, 3) uint8 BGR
    fps: float
    times: np.ndarray  # (T,) s
    matrices: np.ndarray  # (T, 3, 3) image → frame
    motion: Motion
    _field: Callable | None = None  # (t_index, xy (N,2) frame coords) → displacement (N,2)

    def __len__(self) -> int:
        return len(self.frames)

    def true_positions(self, points) -> np.ndarray:
        """(T, P, 2) true frame positions of points given in FRAME-0 coordinates."""
        pts = np.asarray(points, float).reshape(-1, 2)
        # frame 0 → image coordinates: frame(x) samples the image at A⁻¹(x − v(x))
        base0 = pts if self._field is None else pts - self._field(0, pts)
        src = _apply(np.linalg.inv(self.matrices[0]), base0)
        out = np.empty((len(self), len(pts), 2))
        for i, m in enumerate(self.matrices):
            base = _apply(m, src)
            out[i] = base if self._field is None else self._forward(i, base)
        return out

    def _forward(self, i, base):
        # frame(x) samples image at A⁻¹(x − v(x)): the point whose image position maps to
        # `base` under A sits where x − v(x) = base. v is smooth and small, so iterate.
        x = base.copy()
        for _ in range(50):
            x = base + self._field(i, x)
        return x


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Projective map of (N, 2) points (an affine m has the last row 0, 0, 1)."""
    q = pts @ m[:2, :2].T + m[:2, 2]
    if m[2, 0] == 0 and m[2, 1] == 0:
        return q / m[2, 2] if m[2, 2] != 1 else q
    return q / (pts @ m[2, :2] + m[2, 2])[:, None]


def motion_blur_line(img: np.ndarray, dxy, cv2) -> np.ndarray:
    """Average of the image along a line of length |dxy| (the motion during the exposure)."""
    length = float(np.hypot(*dxy))
    if length < 0.5:
        return img
    k = int(np.ceil(length)) | 1
    kern = np.zeros((k, k), np.float32)
    c = (k - 1) / 2
    for s in np.linspace(-0.5, 0.5, 4 * k):
        kern[int(round(c + s * dxy[1])), int(round(c + s * dxy[0]))] += 1
    return cv2.filter2D(img, -1, kern / kern.sum(), borderType=cv2.BORDER_REFLECT101)


def _through_codec(frames: np.ndarray, fourcc: str, fps: float) -> np.ndarray:
    """Encode the frames as a video with ``fourcc`` and decode them again (lossy, inter-frame)."""
    import tempfile

    cv2 = cv2_module()
    h, w = frames.shape[1:3]
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / ("seq.avi" if fourcc == "MJPG" else "seq.mp4"))
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
        if not writer.isOpened():
            raise EdgekdError(f"this OpenCV build cannot encode {fourcc!r} video", "use codec 'mp4v' or jpeg_quality instead")
        for f in frames:
            writer.write(f)
        writer.release()
        cap = cv2.VideoCapture(path)
        out = []
        while len(out) < len(frames):
            ok, f = cap.read()
            if not ok:
                break
            out.append(f)
        cap.release()
    if len(out) != len(frames):
        raise EdgekdError(f"the {fourcc} round trip returned {len(out)} of {len(frames)} frames")
    return np.stack(out)


def make_sequence(image, n_frames: int, motion: Motion, seed: int = 0) -> Sequence:
    """Render ``n_frames`` of ``image`` (uint8 gray/BGR) moved by ``motion``."""
    cv2 = cv2_module()
    img = as_bgr(image)
    if n_frames < 1:
        raise EdgekdError(f"n_frames must be ≥ 1, got {n_frames}")
    h, w = img.shape[:2]
    rng = np.random.default_rng(seed)
    times = np.arange(n_frames) / motion.fps
    mats = motion.matrices(times, ((w - 1) / 2, (h - 1) / 2))
    field_fn = None
    if motion.warp_px > 0:
        # two smooth sinusoidal fields with random directions and phases, wavelength ~ image size
        k = rng.normal(size=(2, 2))
        k = k / np.linalg.norm(k, axis=1, keepdims=True) * (2 * np.pi / (0.8 * max(h, w)))
        phase = rng.uniform(0, 2 * np.pi, 2)
        amp = motion.warp_px * np.sin(2 * np.pi * motion.warp_hz * times)

        def field_fn(i, xy, k=k, phase=phase, amp=amp):
            return amp[i] * np.column_stack([np.sin(xy @ k[0] + phase[0]), np.sin(xy @ k[1] + phase[1])])

    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    grid = np.column_stack([xs.ravel(), ys.ravel()])
    base = img.astype(np.float32)
    frames = np.empty((n_frames, h, w, 3), np.uint8)
    gain = np.ones((n_frames, 1)) if motion.gain is None else np.asarray(motion.gain(times), np.float64)
    gain = gain.reshape(n_frames, -1) if gain.size in (n_frames, 3 * n_frames) else np.broadcast_to(gain, (n_frames, 1))
    ramp = (xs / max(w - 1, 1) - 0.5).astype(np.float32)
    yramp = (ys / max(h - 1, 1) - 0.5).astype(np.float32)
    centre = np.array([[(w - 1) / 2, (h - 1) / 2]])
    for i in range(n_frames):
        g = grid if field_fn is None else grid - field_fn(i, grid)
        src = _apply(np.linalg.inv(mats[i]), g)
        mx = src[:, 0].reshape(h, w).astype(np.float32)
        my = src[:, 1].reshape(h, w).astype(np.float32)
        f = cv2.remap(base, mx, my, interpolation=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
        if motion.motion_blur > 0 and i > 0:
            # the image point now at the centre moved this much since the last frame
            c0 = _apply(np.linalg.inv(mats[i]), centre)
            f = motion_blur_line(f, motion.motion_blur * (_apply(mats[i], c0) - _apply(mats[i - 1], c0))[0], cv2)
        light = 1.0 + motion.gradient * (i / max(n_frames - 1, 1)) * ramp
        if motion.shading is not None:
            light = light * np.asarray(motion.shading(times[i], ramp, yramp), np.float32)
        f = f * light[..., None] * gain[i].astype(np.float32)[None, None, :]
        if motion.blur_sigma > 0:
            f = cv2.GaussianBlur(f, (0, 0), motion.blur_sigma)
        if motion.noise_std > 0:
            f = f + rng.normal(0, motion.noise_std, f.shape).astype(np.float32)
        frames[i] = np.clip(np.rint(f), 0, 255).astype(np.uint8)
        if motion.jpeg_quality is not None:
            frames[i] = jpeg_roundtrip(frames[i], motion.jpeg_quality)
    if motion.codec:
        frames = _through_codec(frames, motion.codec, motion.fps)
    return Sequence(frames, motion.fps, times, mats, motion, field_fn)


# ── motions ─────────────────────────────────────────────────────────────────


def heartbeat_motion(
    rate_bpm: float = 72.0,
    amplitude_px: float = 0.3,
    fps: float = 30.0,
    drift_px_per_s=(0.0, 0.0),
    harmonics=(1.0, 0.35),
    sway_px: float = 0.0,
    sway_hz: float = 0.1,
    phase: float = 0.0,
) -> Motion:
    """Periodic sub-pixel vertical head motion at the heart rate, plus slow drift.

    vertical(t) = amplitude · Σ_k h_k sin(2π k f t + phase) / Σ h_k with f = rate_bpm / 60,
    so ``amplitude_px`` is the peak of the sum's weights (the waveform is BCG-like, not a pure
    sine, when harmonics beyond the first are non-zero). ``drift_px_per_s`` = (dx, dy) adds
    a constant velocity (a float means vertical drift); ``sway_px`` a slow sinusoidal sway
    in x and y at ``sway_hz`` (breathing / posture).
    """
    if rate_bpm <= 0 or fps <= 0:
        raise EdgekdError("rate_bpm and fps must be positive")
    f = rate_bpm / 60.0
    h = np.asarray(harmonics, float)
    drift = np.array([0.0, float(drift_px_per_s)]) if np.isscalar(drift_px_per_s) else np.asarray(drift_px_per_s, float)

    def vertical(t):
        s = sum(hk * np.sin(2 * np.pi * (k + 1) * f * t + (k + 1) * phase) for k, hk in enumerate(h))
        return amplitude_px * s / h.sum()

    def translate(t):
        sway = sway_px * np.sin(2 * np.pi * sway_hz * t)
        return np.column_stack([drift[0] * t + sway, drift[1] * t + vertical(t) + 0.5 * sway])

    return Motion(
        "heartbeat",
        fps=fps,
        translate=translate,
        info={"vertical": vertical, "rate_bpm": rate_bpm, "amplitude_px": amplitude_px, "drift_px_per_s": drift.tolist()},
    )


def band_noise(rng, n: int, fps: float, rms_px: float, band=(0.7, 3.5)) -> np.ndarray:
    """(n, 2) random head jitter with its power inside the heart-rate band, rms ``rms_px``: motion no filter can
    separate from a pulse by frequency alone."""
    spec = np.fft.rfft(rng.normal(size=(n, 2)), axis=0)
    f = np.fft.rfftfreq(n, 1 / fps)
    spec[(f < band[0]) | (f > band[1])] = 0
    x = np.fft.irfft(spec, n=n, axis=0)
    return x * rms_px / x.std(axis=0)


def standard_motions(fps: float = 30.0) -> dict[str, Motion]:
    """The evaluation suite: each motion alone, then all together."""
    ramp = lambda per_s: (lambda t: per_s * t)  # noqa: E731

    def wobble(ax, ay, hz):
        return lambda t: np.column_stack([ax * np.sin(2 * np.pi * hz * t), ay * np.sin(2 * np.pi * hz * t * 0.7)])

    return {
        "translation": Motion("translation", fps, translate=wobble(12.0, 8.0, 0.5)),
        "rotation": Motion("rotation", fps, rotate_deg=lambda t: 8.0 * np.sin(2 * np.pi * 0.4 * t)),
        "scale": Motion("scale", fps, scale=lambda t: 1.0 + 0.08 * np.sin(2 * np.pi * 0.4 * t)),
        "nonrigid": Motion("nonrigid", fps, warp_px=2.0, warp_hz=0.5),
        "illumination": Motion("illumination", fps, gain=lambda t: 1.0 - 0.35 * np.sin(2 * np.pi * 0.3 * t) ** 2, gradient=0.4),
        "noise": Motion("noise", fps, translate=wobble(3.0, 2.0, 0.5), noise_std=8.0),
        "blur": Motion("blur", fps, translate=wobble(3.0, 2.0, 0.5), blur_sigma=1.5),
        "heartbeat": heartbeat_motion(72, 0.3, fps, drift_px_per_s=(0.5, 1.0)),
        "combined": Motion(
            "combined", fps, translate=wobble(6.0, 4.0, 0.4), rotate_deg=lambda t: 4.0 * np.sin(2 * np.pi * 0.3 * t),
            scale=lambda t: 1.0 + 0.04 * np.sin(2 * np.pi * 0.25 * t), warp_px=1.0,
            gain=lambda t: 1.0 - 0.2 * np.sin(2 * np.pi * 0.2 * t) ** 2, noise_std=4.0, blur_sigma=0.7,
        ),
    }


def _wobble(ax, ay, hz):
    return lambda t: np.column_stack([ax * np.sin(2 * np.pi * hz * t), ay * np.sin(2 * np.pi * hz * t * 0.7)])


def moving_light(spot: float = 0.45, ramp: float = 0.35, period_s: float = 8.0):
    """A light spot circling the face plus a shading ramp whose direction turns: light that differs across a patch."""

    def shading(t, X, Y):
        a = 2 * np.pi * t / period_s
        lx, ly = 0.3 * np.cos(a), 0.3 * np.sin(a)
        b = 2 * np.pi * t / (1.25 * period_s)
        blob = spot * np.exp(-((X - lx) ** 2 + (Y - ly) ** 2) / (2 * 0.18**2))
        return (0.75 + blob) * (1 + ramp * (X * np.cos(b) + Y * np.sin(b)))

    return shading


def validation_motions(fps: float = 30.0) -> dict[str, Motion]:
    """Short motions the DFE trainer scores checkpoints on (validation faces only)."""
    return {
        "translation": Motion("translation", fps, translate=_wobble(12.0, 8.0, 0.5)),
        "moving_light": Motion("moving_light", fps, translate=_wobble(3.0, 2.0, 0.5), shading=moving_light(period_s=2.0)),
        "illumination": Motion("illumination", fps, gain=lambda t: 1.0 - 0.35 * np.sin(2 * np.pi * 0.8 * t) ** 2, gradient=0.4),
        "heartbeat": heartbeat_motion(72, 0.3, fps, drift_px_per_s=(0.5, 1.0)),
        # the long suite's codecs: a checkpoint that only tracks lossless frames is not the one to keep
        "jpeg": Motion("jpeg", fps, translate=_wobble(6.0, 4.0, 0.5), jpeg_quality=40),
        "video_codec": Motion("video_codec", fps, translate=_wobble(6.0, 4.0, 0.5), codec="mp4v"),
    }


# Long-suite groups: what the goal of each is stated on (benchmarks/tracking.md).
LONG_GROUPS = {
    "rigid": ("translation", "similarity", "heartbeat"),  # lossless rigid motion: precision
    "illumination": ("illumination", "moving_light"),
    "geometry": ("perspective",),
    "degraded": ("motion_blur", "jpeg", "video_codec"),
    "combined": ("combined",),
}


def long_motions(fps: float = 30.0) -> dict[str, Motion]:
    """The long suite (≥ 300 frames): drift shows, lights move, codecs and motion blur degrade the frames."""
    return {
        "translation": Motion("translation", fps, translate=_wobble(12.0, 8.0, 0.25)),
        "similarity": Motion("similarity", fps, translate=_wobble(6.0, 4.0, 0.2),
                             rotate_deg=lambda t: 8.0 * np.sin(2 * np.pi * 0.15 * t),
                             scale=lambda t: 1.0 + 0.08 * np.sin(2 * np.pi * 0.1 * t)),
        "heartbeat": heartbeat_motion(72, 0.3, fps, drift_px_per_s=(0.5, 1.0), sway_px=2.0),
        "illumination": Motion("illumination", fps, translate=_wobble(3.0, 2.0, 0.2),
                               gain=lambda t: 1.0 - 0.35 * np.sin(2 * np.pi * 0.15 * t) ** 2, gradient=0.4),
        "moving_light": Motion("moving_light", fps, translate=_wobble(3.0, 2.0, 0.2), shading=moving_light()),
        # yaw/pitch-like foreshortening: ±8 % at 100 px from the centre
        "perspective": Motion("perspective", fps, translate=_wobble(4.0, 3.0, 0.15),
                              perspective=lambda t: np.column_stack([0.0008 * np.sin(2 * np.pi * 0.12 * t),
                                                                     0.0005 * np.sin(2 * np.pi * 0.09 * t + 1.0)])),
        # fast head motion (up to ~2 px per frame), blurred along it over a full-frame exposure
        "motion_blur": Motion("motion_blur", fps, translate=_wobble(15.0, 10.0, 0.6), motion_blur=1.0),
        "jpeg": Motion("jpeg", fps, translate=_wobble(6.0, 4.0, 0.3), jpeg_quality=40),
        # OpenCV's wheels carry no H.264 encoder; MPEG-4 Part 2 is the inter-frame codec they have
        "video_codec": Motion("video_codec", fps, translate=_wobble(6.0, 4.0, 0.3), codec="mp4v"),
        "combined": Motion("combined", fps, translate=_wobble(6.0, 4.0, 0.3), rotate_deg=lambda t: 4.0 * np.sin(2 * np.pi * 0.12 * t),
                           scale=lambda t: 1.0 + 0.04 * np.sin(2 * np.pi * 0.1 * t),
                           perspective=lambda t: np.column_stack([0.0004 * np.sin(2 * np.pi * 0.1 * t), np.zeros(len(t))]),
                           shading=moving_light(spot=0.3, ramp=0.25), motion_blur=0.5, noise_std=3.0, codec="mp4v"),
    }


SUITES = {"standard": standard_motions, "long": long_motions}


# ── real images and clips ───────────────────────────────────────────────────

# Held out of DFE training (unseen subjects). The validation subjects pick DFE checkpoints and settings;
# the test subjects are only seen by ``edgekd track eval``.
VALIDATION_ORL = ("s38", "s39", "s40")
VALIDATION_STILLS = ("biden.jpg",)
TEST_ORL = ("s36", "s37")
TEST_STILLS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg")
HELDOUT_ORL = TEST_ORL + VALIDATION_ORL
HELDOUT_STILLS = TEST_STILLS + VALIDATION_STILLS
FACE_WIDTH = 160  # faces are rescaled to about this width: the scale DFE is trained and evaluated at


def face_frame(image, face_width: int = FACE_WIDTH, margin: float = 0.5):
    """Rescale so the largest detected face is ``face_width`` px wide and cut a box around it.

    Returns ``(image, face_box)``; ``face_box`` is (x, y, w, h) in the returned image.
    Raises EdgekdError when no face is found.
    """
    cv2 = cv2_module()
    img = as_bgr(image)
    boxes = detect_faces(img, min_size=max(24, min(img.shape[:2]) // 8))
    if len(boxes) == 0:
        raise EdgekdError("no face found in the image", "use a frontal face photo")
    x, y, w, h = boxes[0]
    s = face_width / w
    img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    x, y, w, h = (np.array([x, y, w, h]) * s).round().astype(int)
    m = int(margin * w)
    x0, y0 = max(0, x - m), max(0, y - m)
    x1, y1 = min(img.shape[1], x + w + m), min(img.shape[0], y + h + m)
    return np.ascontiguousarray(img[y0:y1, x0:x1]), np.array([x - x0, y - y0, w, h])


def heldout_faces(data_root, limit: int | None = None):
    """[(name, image, face_box, skin points)] for the test subjects (faces found by Haar)."""
    root = Path(data_root)
    paths = [root / "stills" / n for n in TEST_STILLS] + [root / "orl" / s / "1.pgm" for s in TEST_ORL]
    out = []
    for p in paths:
        if not p.is_file():
            continue
        img = read_image(p)
        if p.suffix == ".pgm":  # 92×112 ORL faces: upscale so the face is not tiny
            img = cv2_module().resize(img, None, fx=2, fy=2, interpolation=cv2_module().INTER_CUBIC)
        try:
            frame, box = face_frame(img)
        except EdgekdError:
            continue
        out.append((f"{p.parent.name}/{p.stem}", frame, box, skin_points(box)))
        if limit and len(out) >= limit:
            break
    if not out:
        raise EdgekdError(f"no held-out face images found under {root}", "point --data at the faces folder (with stills/ and orl/)")
    return out


def read_video(path, max_frames: int | None = None):
    """All frames (list of uint8 BGR) and fps; EdgekdError when unreadable or empty."""
    cv2 = cv2_module()
    p = Path(path)
    if not p.is_file():
        raise EdgekdError(f"video not found: {p}", "check the path")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise EdgekdError(f"cannot open video {p}", "use a file OpenCV/FFmpeg can read (mp4, avi, mkv)")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while max_frames is None or len(frames) < max_frames:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise EdgekdError(f"no frames could be read from {p}", "the file is empty, truncated or not a video")
    return frames, float(fps)


def load_dlib_landmarks(path) -> np.ndarray:
    """(T, 68, 2) automatic dlib landmarks (NaN where dlib found no face). A rough check only."""
    arr = np.load(Path(path), allow_pickle=False)
    if arr.ndim != 3 or arr.shape[-1] != 2:
        raise EdgekdError(f"{path}: expected (T, 68, 2) landmarks, got {arr.shape}")
    return arr.astype(np.float64)
