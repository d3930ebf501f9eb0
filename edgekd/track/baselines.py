"""Classical trackers behind the same streaming interface as DFE.

* ``lk``   — pyramidal Lucas–Kanade (cv2.calcOpticalFlowPyrLK), frame to frame, with a
             forward–backward check (a point whose round trip misses by > ``fb_max`` px is lost).
* ``ncc``  — normalised cross-correlation (TM_CCOEFF_NORMED) of the first frame's 31×31
             template in a search window, sub-pixel by the same 3×3 quadratic fit as DFE.
* ``sift`` / ``orb`` — keypoints near the point in the first frame matched to keypoints
             in a window around its last position (ratio test), the point moved by a
             RANSAC similarity (≥ 3 matches) or the median shift (1–2 matches).

Every tracker has both reference modes (``reference``): ``anchored`` compares each frame
with the first one, ``chained`` with the previous one (a fresh template, flow from the last
frame, keypoints re-cut around the last position). Defaults are each method's usual
form: LK chained, the others anchored. NCC centres its window at the constant-velocity
prediction, as DFE does.

SURF is not offered: it is patented and absent from every OpenCV build on the package
registries (``cv2.xfeatures2d`` is missing), so it is listed as unavailable instead.
"""

from __future__ import annotations

import numpy as np

from edgekd.errors import EdgekdError
from edgekd.track.preprocess import CROP, HALF, as_gray, check_points, cv2_module
from edgekd.track.subpixel import refine_minimum


REFERENCE_MODES = ("anchored", "chained")


def _check_reference(reference: str) -> str:
    if reference not in REFERENCE_MODES:
        raise EdgekdError(f"unknown reference mode {reference!r}", f"use one of: {', '.join(REFERENCE_MODES)}")
    return reference


class _Base:
    name = "?"

    def _check_frame(self, gray):
        if gray.shape != self.shape:
            raise EdgekdError(f"frame size changed from {self.shape[::-1]} to {gray.shape[::-1]}")

    def _lose(self, mask):
        self.ok &= ~mask
        self.pos[~self.ok] = np.nan

    def _out_of_frame(self, pos):
        h, w = self.shape
        return ~((pos[:, 0] >= 0) & (pos[:, 0] <= w - 1) & (pos[:, 1] >= 0) & (pos[:, 1] <= h - 1))

    def positions(self):
        out = self.pos.copy()
        out[~self.ok] = np.nan
        return out


class LKTracker(_Base):
    name = "lk"

    def __init__(self, win: int = 21, levels: int = 3, fb_max: float = 1.0, reference: str = "chained"):
        self.win, self.levels, self.fb_max = win, levels, fb_max
        self.reference = _check_reference(reference)

    def init(self, frame, points):
        gray = as_gray(frame)
        self.shape = gray.shape
        self.pos = check_points(points, self.shape).copy()
        self.start = self.pos.copy()
        self.ok = np.ones(len(self.pos), bool)
        self.prev = gray
        self.first = gray

    def update(self, frame):
        cv2 = cv2_module()
        gray = as_gray(frame)
        self._check_frame(gray)
        idx = np.flatnonzero(self.ok)
        if len(idx):
            kw = dict(winSize=(self.win, self.win), maxLevel=self.levels,
                      criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
            if self.reference == "chained":
                ref, p0 = self.prev, self.pos[idx].astype(np.float32).reshape(-1, 1, 2)
                p1, st1, _ = cv2.calcOpticalFlowPyrLK(ref, gray, p0, None, **kw)
            else:  # flow from the first frame, started at the last position
                ref, p0 = self.first, self.start[idx].astype(np.float32).reshape(-1, 1, 2)
                guess = self.pos[idx].astype(np.float32).reshape(-1, 1, 2)
                p1, st1, _ = cv2.calcOpticalFlowPyrLK(ref, gray, p0, guess.copy(), flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **kw)
            back, st2, _ = cv2.calcOpticalFlowPyrLK(gray, ref, p1, p0.copy(), flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **kw)
            fb = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
            good = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb <= self.fb_max)
            new = p1.reshape(-1, 2).astype(np.float64)
            self.pos[idx] = new
            lost = np.zeros(len(self.ok), bool)
            lost[idx] = ~good | self._out_of_frame(new)
            self._lose(lost)
        self.prev = gray
        return self.positions(), self.ok.copy()


class NCCTracker(_Base):
    name = "ncc"

    def __init__(self, radius: int = 6, min_score: float = 0.5, reference: str = "anchored", predict: bool = True):
        self.radius, self.min_score = radius, min_score
        self.reference, self.predict = _check_reference(reference), bool(predict)

    def init(self, frame, points):
        cv2 = cv2_module()
        gray = as_gray(frame).astype(np.float32)
        self.shape = gray.shape
        self.pos = check_points(points, self.shape).copy()
        self.velocity = np.zeros_like(self.pos)
        self.ok = np.ones(len(self.pos), bool)
        self.templates = [cv2.getRectSubPix(gray, (CROP, CROP), (float(x), float(y))) for x, y in self.pos]

    def update(self, frame):
        cv2 = cv2_module()
        gray = as_gray(frame).astype(np.float32)
        self._check_frame(gray)
        r = self.radius
        size = CROP + 2 * r
        pad = size // 2
        padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        h, w = self.shape
        grid = np.arange(-r, r + 1)
        for p in np.flatnonzero(self.ok):
            guess = self.pos[p] + (self.velocity[p] if self.predict else 0.0)
            cx = int(np.clip(np.rint(guess[0]), 0, w - 1))
            cy = int(np.clip(np.rint(guess[1]), 0, h - 1))
            region = padded[cy : cy + size, cx : cx + size]
            score = cv2.matchTemplate(region, self.templates[p], cv2.TM_CCOEFF_NORMED)
            valid = ((cy + grid >= HALF) & (cy + grid <= h - 1 - HALF))[:, None] & (
                (cx + grid >= HALF) & (cx + grid <= w - 1 - HALF))[None, :]
            cost = np.where(valid, -score, np.inf)
            m = refine_minimum(cost)
            if m is None or -m[4] < self.min_score:
                self.ok[p] = False
                self.pos[p] = np.nan
                continue
            ix, iy, dx, dy, _ = m
            new = np.array([cx + ix - r + dx, cy + iy - r + dy])
            self.velocity[p] = new - self.pos[p]
            self.pos[p] = new
            if self.reference == "chained":
                self.templates[p] = cv2.getRectSubPix(gray, (CROP, CROP), (float(new[0]), float(new[1])))
        return self.positions(), self.ok.copy()


class FeatureTracker(_Base):
    """SIFT or ORB keypoints matched in a window around each point."""

    def __init__(self, kind: str = "sift", ref_radius: int = 24, radius: int = 6, ratio: float = 0.8, min_matches: int = 1,
                 reference: str = "anchored"):
        cv2 = cv2_module()
        self.name = kind
        self.reference = _check_reference(reference)
        if kind == "sift":
            self.detector = cv2.SIFT_create()
            self.norm = cv2.NORM_L2
        elif kind == "orb":
            # small patches: faces at ~160 px give few corners, so ask for many and keep the border small
            self.detector = cv2.ORB_create(nfeatures=5000, edgeThreshold=15, patchSize=15, fastThreshold=5)
            self.norm = cv2.NORM_HAMMING
        else:
            raise EdgekdError(f"unknown feature type {kind!r}", "use sift or orb")
        self.matcher = cv2.BFMatcher(self.norm)
        self.ref_radius, self.radius, self.ratio, self.min_matches = ref_radius, radius, ratio, min_matches

    def _detect(self, gray):
        kps, desc = self.detector.detectAndCompute(gray, None)
        xy = np.array([k.pt for k in kps], np.float64).reshape(-1, 2)
        return xy, desc

    def init(self, frame, points):
        gray = as_gray(frame)
        self.shape = gray.shape
        self.pos = check_points(points, self.shape).copy()
        self.ok = np.ones(len(self.pos), bool)
        xy, desc = self._detect(gray)
        self.refs = [self._refs_around(xy, desc, p) for p in self.pos]

    def _refs_around(self, xy, desc, p):
        near = np.flatnonzero(np.abs(xy - p).max(1) <= self.ref_radius) if len(xy) else np.array([], int)
        return xy[near] - p, desc[near] if len(near) else None

    def update(self, frame):
        cv2 = cv2_module()
        gray = as_gray(frame)
        self._check_frame(gray)
        xy, desc = self._detect(gray)
        for p in np.flatnonzero(self.ok):
            ref_off, ref_desc = self.refs[p]
            near = np.flatnonzero(np.abs(xy - self.pos[p]).max(1) <= self.ref_radius + self.radius) if len(xy) else []
            if ref_desc is None or len(near) < 2 or len(ref_desc) < 2:
                self._lose_one(p)
                continue
            pairs = self.matcher.knnMatch(ref_desc, desc[near], k=2)
            src, dst = [], []
            for pair in pairs:
                if len(pair) == 2 and pair[0].distance < self.ratio * pair[1].distance:
                    src.append(ref_off[pair[0].queryIdx])
                    dst.append(xy[near[pair[0].trainIdx]])
            if len(src) < self.min_matches:
                self._lose_one(p)
                continue
            src, dst = np.asarray(src), np.asarray(dst)
            if len(src) >= 3:
                m, inl = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32), method=cv2.RANSAC, ransacReprojThreshold=2.0)
                if m is None:
                    self._lose_one(p)
                    continue
                new = m[:, 2]  # the point is the origin of the reference offsets
            else:
                new = np.median(dst - src, axis=0)
            if np.abs(new - self.pos[p]).max() > self.ref_radius + self.radius or self._out_of_frame(new[None])[0]:
                self._lose_one(p)
                continue
            self.pos[p] = new
            if self.reference == "chained":
                self.refs[p] = self._refs_around(xy, desc, new)
        return self.positions(), self.ok.copy()

    def _lose_one(self, p):
        self.ok[p] = False
        self.pos[p] = np.nan
