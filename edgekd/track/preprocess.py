"""Image preparation shared by DFE training and tracking (numpy + OpenCV only).

The encoder sees CIELAB scaled to [0, 1]: OpenCV's 8-bit Lab (L·255/100, a+128, b+128)
divided by 255. Training and tracking both go through :func:`bgr_to_lab01` so they can
never disagree about the input.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from edgekd.errors import EdgekdError, require

CROP = 31
HALF = CROP // 2


def cv2_module():
    return require("cv2", extra="device", package="opencv-python-headless")


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Any uint8 image (gray, BGR, BGRA) → contiguous (H, W, 3) uint8 BGR."""
    cv2 = cv2_module()
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise EdgekdError(f"frames must be uint8 images, got dtype {img.dtype}", "pass frames as read by cv2.imread/VideoCapture")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 3:
        return np.ascontiguousarray(img)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    raise EdgekdError(f"cannot use an image of shape {img.shape} as a frame", "expected (H, W) or (H, W, 3) uint8")


def as_gray(image: np.ndarray) -> np.ndarray:
    cv2 = cv2_module()
    img = np.asarray(image)
    if img.ndim == 2:
        return img
    return cv2.cvtColor(as_bgr(img), cv2.COLOR_BGR2GRAY)


def bgr_to_lab01(image: np.ndarray) -> np.ndarray:
    """uint8 BGR → float32 (H, W, 3) CIELAB in [0, 1]."""
    cv2 = cv2_module()
    return cv2.cvtColor(as_bgr(image), cv2.COLOR_BGR2LAB).astype(np.float32) * (1.0 / 255.0)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """uint8 BGR image → the same image encoded and decoded as JPEG at ``quality`` (what a compressed frame looks like)."""
    cv2 = cv2_module()
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def read_image(path: str | Path) -> np.ndarray:
    cv2 = cv2_module()
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise EdgekdError(f"cannot read image {path}", "use a PNG/JPEG/PGM file OpenCV can open")
    return img


def check_points(points, shape, margin: int = HALF) -> np.ndarray:
    """Validate (P, 2) x,y points against a frame: finite, inside, crop inside the image."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 1 and pts.size == 2:
        pts = pts[None]
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
        raise EdgekdError(f"points must be a non-empty (P, 2) array of x,y, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise EdgekdError("points contain NaN or infinity", "pass finite x,y pixel positions")
    h, w = shape[:2]
    for i, (x, y) in enumerate(pts):
        if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
            raise EdgekdError(f"point {i} ({x:.1f}, {y:.1f}) is outside the {w}×{h} frame", "x runs 0..width-1, y 0..height-1")
        if not (margin <= x <= w - 1 - margin and margin <= y <= h - 1 - margin):
            raise EdgekdError(
                f"point {i} ({x:.1f}, {y:.1f}): its {2 * margin + 1}×{2 * margin + 1} crop leaves the {w}×{h} frame",
                f"keep points at least {margin} px from the border",
            )
    return pts


@functools.lru_cache(maxsize=1)
def _face_cascade():
    cv2 = cv2_module()
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise EdgekdError("this OpenCV build has no Haar face detector", "install opencv-python-headless>=4.10,<5")
    cascade_path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(cascade_path))
    if cascade.empty():
        raise EdgekdError(f"OpenCV Haar cascade missing at {cascade_path}", "install opencv-python-headless>=4.10,<5")
    return cascade


def detect_faces(image_bgr: np.ndarray, min_size: int = 40) -> np.ndarray:
    """Haar frontal-face boxes (x, y, w, h), largest first; empty (0, 4) when none."""
    cv2 = cv2_module()
    cascade = _face_cascade()
    gray = as_gray(image_bgr)
    # big photos: detect on a ≤ 640 px copy (faces there are large anyway), then scale back
    s = min(1.0, 640 / max(gray.shape))
    if s < 1:
        gray = cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    m = max(12, int(min_size * s))
    boxes = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(m, m))
    boxes = np.rint(np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / s).astype(np.int64)
    return boxes[np.argsort(-(boxes[:, 2] * boxes[:, 3]))]


def skin_points(face_box, n: int = 9) -> np.ndarray:
    """Points on forehead and cheeks of a face box (x, y, w, h): where iBCG tracks skin."""
    x, y, w, h = [float(v) for v in face_box]
    rel = [(0.35, 0.2), (0.5, 0.18), (0.65, 0.2), (0.28, 0.55), (0.72, 0.55), (0.3, 0.68), (0.7, 0.68), (0.5, 0.3), (0.5, 0.6)]
    rel = rel[:n] if n <= len(rel) else rel + [tuple(r) for r in np.random.default_rng(0).uniform(0.25, 0.75, (n - len(rel), 2))]
    return np.array([[x + rx * w, y + ry * h] for rx, ry in rel], dtype=np.float64)
