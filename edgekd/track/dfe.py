"""The DFE tracker: match deep feature encodings of 31×31 crops in a search window.

Per frame, every active point's (31+2r)×(31+2r) search region is cut around its last
position and all regions go through the encoder in one batch; the fully convolutional
encoder returns the encodings of all (2r+1)² candidate crops. The cost of a candidate is
the squared L2 distance to a reference encoding. The accepted match is the best
candidate whose 3×3 quadratic fit is a true minimum; the sub-pixel offset (clipped to
±1 px) comes from one Gauss–Newton step on the encodings around it (``subpixel``;
``quadratic`` = the fit itself, the paper's way).

References (``reference``): ``group`` (the default) keeps the first reference (encoded
at the exact initial position) and, when the best match degrades (relative distance
above ``add_ref``), adds the encoding at the new match, up to ``max_refs`` (the oldest
added one is dropped); ``anchored`` keeps the first reference only; ``chained`` replaces
the reference by the encoding at each new match (frame-to-frame tracking, which drifts).
A point is lost — NaN from then on — when no candidate is a true minimum or the relative
distance exceeds ``lost``. Relative distance = distance ÷ squared norm of the first
reference, so the thresholds do not depend on the encoder's scale.

The search window is centred where the point would be at constant velocity
(``predict``), so fast but smooth head motion stays inside a small window; when the best
candidate lies on the window's rim the window moves there and is encoded again (at most
``recentre`` times), so a small exported window (r = 3) still follows a sudden jump. An encoder
that normalises its input (``norm_radius``) sees ``context`` = 31 + 2m px per crop; the
regions grow by the same margin and nothing else changes.
"""

from __future__ import annotations

import numpy as np

from edgekd.track.backends import EncoderBackend, load_encoder
from edgekd.track.preprocess import HALF, bgr_to_lab01, check_points, cv2_module
from edgekd.track.subpixel import gauss_newton_offset, refine_minimum

DEFAULT_RADIUS = 3  # chosen on the validation subjects (benchmarks/tracking/choices.json): with the constant-velocity
# prediction and re-centring, ±3 px tracks as well as ±6 at 2.2× fewer MACs
REFERENCES = ("group", "anchored", "chained")
SUBPIXEL = ("gauss-newton", "quadratic")


class DFETracker:
    name = "dfe"

    def __init__(
        self,
        encoder,
        radius: int | None = None,
        max_refs: int = 4,
        add_ref: float = 0.05,
        lost: float = 0.25,
        top_k: int = 5,
        threads: int | None = None,
        reference: str = "group",
        predict: bool = True,
        subpixel: str = "gauss-newton",
        recentre: int = 2,
    ):
        from edgekd.errors import EdgekdError

        if reference not in REFERENCES:
            raise EdgekdError(f"unknown DFE reference mode {reference!r}", f"use one of: {', '.join(REFERENCES)}")
        if subpixel not in SUBPIXEL:
            raise EdgekdError(f"unknown sub-pixel method {subpixel!r}", f"use one of: {', '.join(SUBPIXEL)}")
        self.subpixel = subpixel
        self.recentre = int(recentre)
        self.encoder: EncoderBackend = load_encoder(encoder, threads)
        self.context = self.encoder.context
        fixed = self.encoder.input_size
        if radius is None:
            radius = (fixed - self.context) // 2 if fixed else DEFAULT_RADIUS
        if fixed and fixed != self.context + 2 * radius:
            raise EdgekdError(
                f"this encoder was exported for {fixed}×{fixed} regions (radius {(fixed - self.context) // 2}), not radius {radius}",
                "leave the radius unset or export the encoder again with the region size you want",
            )
        self.radius = int(radius)
        self.size = self.context + 2 * self.radius
        self.reference, self.predict = reference, bool(predict)
        if reference == "anchored":
            max_refs = 1
        self.max_refs, self.add_ref, self.lost, self.top_k = max_refs, add_ref, lost, top_k

    # -- helpers -----------------------------------------------------------------
    def _regions(self, frame: np.ndarray, centres: np.ndarray) -> np.ndarray:
        """Integer centres (P, 2) → (P, 3, S, S) CIELAB regions of the edge-padded frame.

        Only the regions are converted to Lab (colour conversion is per pixel, so this equals
        cropping a converted frame): converting and padding a whole 640×480 frame cost ~14 ms.
        """
        cv2 = cv2_module()
        h, w = frame.shape[:2]
        half = self.size // 2
        out = np.empty((len(centres), 3, self.size, self.size), np.float32)
        for i, (cx, cy) in enumerate(centres):
            # a predicted or re-centred window may leave the frame; the region is then the edge-padded border
            cx, cy = min(max(int(cx), 0), w - 1), min(max(int(cy), 0), h - 1)
            x0, y0 = cx - half, cy - half
            x1, y1 = x0 + self.size, y0 + self.size
            crop = frame[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
            if crop.shape[:2] != (self.size, self.size):
                crop = cv2.copyMakeBorder(crop, max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w),
                                          cv2.BORDER_REPLICATE)
            out[i] = bgr_to_lab01(crop).transpose(2, 0, 1)
        return out

    def _subpixel_regions(self, lab: np.ndarray, points: np.ndarray) -> np.ndarray:
        cv2 = cv2_module()
        out = np.empty((len(points), 3, self.size, self.size), np.float32)
        for i, (x, y) in enumerate(points):
            out[i] = cv2.getRectSubPix(lab, (self.size, self.size), (float(x), float(y))).transpose(2, 0, 1)
        return out

    # -- interface ---------------------------------------------------------------
    def init(self, frame, points) -> None:
        lab = bgr_to_lab01(frame)
        self.shape = lab.shape[:2]
        pts = check_points(points, self.shape)
        r = self.radius
        enc = self.encoder(self._subpixel_regions(lab, pts))  # (P, C, n, n)
        first = enc[:, :, r, r]
        self.norm = np.maximum((first**2).sum(1), 1e-12)
        # refs[p] = list of (encoding, offset of the point from the crop centre)
        self.refs = [[(first[p], np.zeros(2))] for p in range(len(pts))]
        self.pos = pts.copy()
        self.velocity = np.zeros_like(pts)
        self.ok = np.ones(len(pts), bool)
        self.last_cost = np.zeros(len(pts))

    def update(self, frame):
        frame = np.asarray(frame)
        if frame.shape[:2] != self.shape:
            from edgekd.errors import EdgekdError

            raise EdgekdError(f"frame size changed from {self.shape[::-1]} to {frame.shape[1::-1]}")
        active = np.flatnonzero(self.ok)
        if len(active) == 0:
            return self.positions(), self.ok.copy()
        guess = self.pos[active] + (self.velocity[active] if self.predict else 0.0)
        h, w = self.shape
        centres = np.rint(guess).astype(np.int64)
        np.clip(centres[:, 0], 0, w - 1, out=centres[:, 0])
        np.clip(centres[:, 1], 0, h - 1, out=centres[:, 1])
        enc = self.encoder(self._regions(frame, centres))  # (A, C, n, n)
        r = self.radius
        costs = [self._costs(enc[a], p, centres[a]) for a, p in enumerate(active)]
        for _ in range(self.recentre):
            # a best match on the window's rim may lie outside it: move the window there and encode again
            moved = []
            for a in range(len(active)):
                cost = np.min(costs[a], axis=0)
                if np.isfinite(cost).any():
                    iy, ix = np.unravel_index(int(np.argmin(cost)), cost.shape)
                    if ix in (0, 2 * r) or iy in (0, 2 * r):
                        centres[a] = np.clip(centres[a] + (ix - r, iy - r), 0, (w - 1, h - 1))
                        moved.append(a)
            if not moved:
                break
            enc[moved] = self.encoder(self._regions(frame, centres[moved]))
            for a in moved:
                costs[a] = self._costs(enc[a], active[a], centres[a])
        for a, p in enumerate(active):
            cx, cy = centres[a]
            e = enc[a]
            best = None
            for k, ((ref, off), cost) in enumerate(zip(self.refs[p], costs[a])):
                m = refine_minimum(cost, self.top_k)
                if m is None and self.subpixel == "gauss-newton":
                    # no paraboloid among the best candidates (a flat or ridged cost): the Gauss–Newton step does not
                    # need one, so take the best interior candidate and let the distance threshold judge it
                    inner = cost[1:-1, 1:-1]
                    if np.isfinite(inner).any():
                        iy, ix = np.unravel_index(int(np.argmin(inner)), inner.shape)
                        m = (ix + 1, iy + 1, 0.0, 0.0, float(inner[iy, ix]))
                if m is not None and (best is None or m[4] < best[0][4]):
                    best = (m, off, k)
            if best is None:
                self._lose(p)
                continue
            (ix, iy, dx, dy, c), off, k = best
            if self.subpixel == "gauss-newton":
                step = gauss_newton_offset(e, self.refs[p][k][0], ix, iy)
                if step is not None:
                    dx, dy = step
            rel = c / self.norm[p]
            self.last_cost[p] = rel
            if rel > self.lost:
                self._lose(p)
                continue
            mx, my = cx + ix - r, cy + iy - r
            new = np.array([mx + dx, my + dy]) + off
            if self.reference == "chained":
                self.refs[p] = [(e[:, iy, ix].copy(), new - np.array([mx, my], float))]
            elif self.max_refs > 1 and rel > self.add_ref:
                refs = self.refs[p]
                if len(refs) >= self.max_refs:
                    refs.pop(1)
                refs.append((e[:, iy, ix].copy(), new - np.array([mx, my], float)))
            self.velocity[p] = new - self.pos[p]
            self.pos[p] = new
        return self.positions(), self.ok.copy()

    def _costs(self, e: np.ndarray, p: int, centre) -> list[np.ndarray]:
        """Squared encoding distance of every candidate to each of point p's references (inf where a crop leaves the image)."""
        r, (h, w) = self.radius, self.shape
        grid = np.arange(-r, r + 1)
        cx, cy = centre
        valid = ((cy + grid >= HALF) & (cy + grid <= h - 1 - HALF))[:, None] & ((cx + grid >= HALF) & (cx + grid <= w - 1 - HALF))[None, :]
        return [np.where(valid, ((e - ref[:, None, None]) ** 2).sum(0), np.inf) for ref, _ in self.refs[p]]

    def _lose(self, p: int) -> None:
        self.ok[p] = False
        self.pos[p] = np.nan

    def positions(self) -> np.ndarray:
        out = self.pos.copy()
        out[~self.ok] = np.nan
        return out
