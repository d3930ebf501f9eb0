"""Face box, skin regions and stable skin features to track.

Uses the frontal-face Haar cascade that ships inside opencv-python(-headless) 4.x, so
the device needs no extra model file.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# Skin regions in face-box coordinates (x0, y0, x1, y1 as fractions of the Haar box).
# The Haar box runs from about the eyebrows' top to below the mouth; eyes sit at
# y≈0.25–0.45 and the mouth at y≈0.72–0.92, so these regions avoid both (blinks and
# speech move those pixels without any heartbeat in them).
SKIN_REGIONS = {
    "forehead": (0.28, 0.04, 0.72, 0.20),
    "nose": (0.42, 0.45, 0.58, 0.64),
    "left_cheek": (0.14, 0.50, 0.36, 0.70),
    "right_cheek": (0.64, 0.50, 0.86, 0.70),
}
RPPG_REGIONS = ("forehead", "left_cheek", "right_cheek")


@lru_cache(maxsize=1)
def _cascade():
    import cv2

    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"could not load the OpenCV face detector from {path}")
    return cascade


def to_gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def detect_face(frame: np.ndarray) -> tuple[int, int, int, int] | None:
    """Largest frontal face as (x, y, w, h), or None."""
    import cv2

    gray = cv2.equalizeHist(to_gray(frame))
    side = min(gray.shape[:2])
    faces = _cascade().detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(max(24, side // 8),) * 2
    )
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return int(x), int(y), int(w), int(h)


def region_rects(box: tuple[int, int, int, int], names=tuple(SKIN_REGIONS)) -> list[tuple[int, int, int, int]]:
    """Pixel rectangles (x0, y0, x1, y1) of the named skin regions of a face box."""
    x, y, w, h = box
    rects = []
    for name in names:
        fx0, fy0, fx1, fy1 = SKIN_REGIONS[name]
        rects.append((int(x + fx0 * w), int(y + fy0 * h), int(x + fx1 * w), int(y + fy1 * h)))
    return rects


def skin_mask(shape: tuple[int, int], rects) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    for x0, y0, x1, y1 in rects:
        mask[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = 255
    return mask


def select_features(
    frame: np.ndarray,
    rects,
    max_points: int = 40,
    margin: int = 0,
) -> np.ndarray:
    """Corner features on skin (Shi–Tomasi inside the regions), topped up with a grid.

    Skin has few strong corners, so when fewer than half of ``max_points`` are found the
    rest are placed on a regular grid over the regions: the DFE and LK trackers can follow
    low-texture crops, just less precisely, and the combination step drops the erratic ones.
    ``margin`` keeps points that far from the image border (a tracker crop must fit).
    """
    import cv2

    gray = to_gray(frame)
    h, w = gray.shape[:2]
    inner = (margin, margin, w - margin, h - margin)
    clipped = [
        (max(x0, inner[0]), max(y0, inner[1]), min(x1, inner[2]), min(y1, inner[3]))
        for x0, y0, x1, y1 in rects
    ]
    clipped = [r for r in clipped if r[2] - r[0] >= 2 and r[3] - r[1] >= 2]
    if not clipped:
        return np.zeros((0, 2), np.float32)
    mask = skin_mask(gray.shape, clipped)
    area = float(mask.astype(bool).sum())
    min_distance = max(3.0, 0.5 * np.sqrt(area / max(max_points, 1)))
    corners = cv2.goodFeaturesToTrack(gray, max_points, qualityLevel=0.01, minDistance=min_distance, mask=mask)
    points = np.zeros((0, 2), np.float32) if corners is None else corners.reshape(-1, 2).astype(np.float32)
    if len(points) < max_points // 2:
        points = np.concatenate([points, _grid(clipped, max_points - len(points))], axis=0)
    return points[:max_points]


def _grid(rects, count: int) -> np.ndarray:
    areas = np.array([(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in rects], float)
    share = np.maximum(1, np.round(count * areas / areas.sum())).astype(int)
    out = []
    for (x0, y0, x1, y1), n in zip(rects, share):
        aspect = (x1 - x0) / max(1, y1 - y0)
        nx = max(1, int(round(np.sqrt(n * aspect))))
        ny = max(1, int(np.ceil(n / nx)))
        xs = x0 + (np.arange(nx) + 0.5) * (x1 - x0) / nx
        ys = y0 + (np.arange(ny) + 0.5) * (y1 - y0) / ny
        out.append(np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)[:n])
    return np.concatenate(out, 0).astype(np.float32)[:count]
