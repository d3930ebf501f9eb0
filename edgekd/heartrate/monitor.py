"""Streaming heart-rate monitor: push frames, get one estimate per step.

The same object serves a file (``edgekd heartrate``), a benchmark and a live camera
(the device app): frames go in one at a time with their timestamps, and every
``step_s`` seconds, once a full ``window_s`` is buffered, a :class:`WindowResult` comes out.
Device side: numpy + OpenCV + the tracker's encoder runtime. Never torch.
"""

from __future__ import annotations

import math
import time
from collections import deque

import numpy as np

from edgekd.errors import EdgekdError
from edgekd.heartrate import face as facemod
from edgekd.heartrate.fusion import DEFAULT_MIN_SNR_DB, DEFAULT_MIN_SNR_DB_RPPG, WindowResult, fuse, hold
from edgekd.heartrate.ibcg import MotionGate, ibcg_window
from edgekd.heartrate.rppg import FULL_FRAME_GRID, REGION_GRID, tile_rects, tile_stats, tiled_rppg_estimate
from edgekd.heartrate.signal import DEFAULT_BAND_HZ, bandpass, check_band

METHODS = ("ibcg", "rppg", "fused")
ROIS = ("face", "full")
TRACK_MARGIN = 20  # px: a DFE crop (31×31) plus a little search room must fit inside the frame


class HeartRateMonitor:
    """Window-by-window heart rate from motion (iBCG), colour (rPPG) or both (fused).

    ``roi="face"`` finds the face with the Haar cascade; motion is tracked on forehead, nose and
    cheeks, colour is read from forehead and cheek tiles that follow the face (by the tracked
    points, or by finding the face again every step when nothing is tracked).
    ``roi="full"`` treats the whole frame as skin (videos that are already a skin crop).
    ``tracker`` is a method name for :func:`edgekd.track.create_tracker` (``encoder`` for dfe).
    """

    def __init__(
        self,
        fps: float,
        method: str = "fused",
        window_s: float = 10.0,
        step_s: float = 1.0,
        band: tuple[float, float] = DEFAULT_BAND_HZ,
        roi: str = "face",
        tracker: str = "lk",
        encoder=None,
        max_points: int = 40,
        combine: str = "mean",
        rppg_algorithm: str = "pos",
        min_snr_db: float = DEFAULT_MIN_SNR_DB,
        min_snr_db_rppg: float = DEFAULT_MIN_SNR_DB_RPPG,
        face_timeout_s: float = 3.0,
        keep_history: bool = False,
        gate: MotionGate | None = None,
    ):
        if method not in METHODS:
            raise EdgekdError(f"unknown heart-rate method {method!r}", f"use one of: {', '.join(METHODS)}")
        if roi not in ROIS:
            raise EdgekdError(f"unknown region {roi!r}", f"use one of: {', '.join(ROIS)}")
        if not fps or fps <= 0 or not math.isfinite(fps):
            raise EdgekdError(f"unusable frame rate {fps!r}", "pass the video's frame rate (--fps)")
        try:
            check_band(fps, band)
        except ValueError as exc:
            raise EdgekdError(str(exc), "use a camera mode with a higher frame rate, or --band LOW,HIGH") from None
        # at least two cycles of the slowest rate, or the spectrum cannot resolve it
        if window_s < 2.0 / band[0]:
            raise EdgekdError(
                f"a {window_s:g} s window is too short for rates down to {band[0] * 60:.0f} bpm",
                f"use --window {math.ceil(2.0 / band[0])} or longer",
            )
        self.fps, self.method, self.window_s, self.step_s = float(fps), method, float(window_s), float(step_s)
        self.band, self.roi, self.combine = tuple(band), roi, combine
        self.rppg_algorithm, self.min_snr_db, self.min_snr_db_rppg = rppg_algorithm, min_snr_db, min_snr_db_rppg
        self.max_points, self.face_timeout_s = max_points, face_timeout_s
        self.tracker_name, self.encoder = tracker, encoder
        self.window_frames = int(round(window_s * fps))
        self.step_frames = max(1, int(round(step_s * fps)))
        self.keep_history = keep_history
        self.gate = gate  # None: ibcg.GATE
        buf = None if keep_history else self.window_frames
        self._times: deque = deque(maxlen=buf)
        self._positions: deque = deque(maxlen=buf)
        self._ok: deque = deque(maxlen=buf)
        self._rgb: deque = deque(maxlen=buf)
        self._dark: deque = deque(maxlen=buf)
        self._saturated: deque = deque(maxlen=buf)
        self._tracker = None
        self._box = None
        self._rects = None
        self._tiles = None  # rPPG tiles (x0, y0, x1, y1) where the colour is read now
        self._tile_origin = None  # the same tiles on the frame the tracks started on
        self._start_pts = None
        self._frames_seen = 0
        self._since_estimate = 0
        self.results: list[WindowResult] = []
        self.points: np.ndarray | None = None
        self.face_box = None
        self.last_pulse: dict = {}
        self.track_seconds = 0.0

    # ── setup on the first usable frame ──
    def _setup(self, frame: np.ndarray) -> bool:
        h, w = frame.shape[:2]
        if self.roi == "full":
            box = (0, 0, w, h)
            rects = [(0, 0, w, h)]
        else:
            box = facemod.detect_face(frame)
            if box is None:
                if self._frames_seen >= self.face_timeout_s * self.fps:
                    raise EdgekdError(
                        f"no face found in the first {self.face_timeout_s:g} s of video",
                        "face the camera in good light, or use --roi full if the video is already a skin crop",
                    )
                return False
            rects = facemod.region_rects(box)
        self._box, self._rects, self.face_box = box, rects, box
        self._tiles = self._tile_origin = self._colour_tiles(box)
        if self.method in ("ibcg", "fused"):
            self._start_tracking(frame)
        return True

    def _start_tracking(self, frame: np.ndarray) -> None:
        from edgekd.track import create_tracker

        pts = facemod.select_features(frame, self._rects, self.max_points, margin=TRACK_MARGIN)
        if len(pts) < 3:
            raise EdgekdError(
                "fewer than 3 skin points can be tracked in this frame",
                "move closer to the camera: the face is too small or too near the border",
            )
        self._tracker = create_tracker(self.tracker_name, encoder=self.encoder)
        self._tracker.init(frame, pts)
        self.points = pts
        self._start_pts = pts.astype(np.float64)
        # the frame the tracker starts on is its first sample
        self._positions.append(self._start_pts.copy())
        self._ok.append(np.ones(len(pts), bool))

    # ── per frame ──
    def push(self, frame: np.ndarray, t: float | None = None) -> WindowResult | None:
        """Add one BGR frame (timestamp ``t`` in s; default frame index / fps)."""
        if t is None:
            t = self._frames_seen / self.fps
        self._frames_seen += 1
        fresh = self._tiles is None
        if fresh and not self._setup(frame):
            return None
        if self._tracker is not None and not fresh:
            t0 = time.perf_counter()
            pos, ok = self._tracker.update(frame)
            self.track_seconds += time.perf_counter() - t0
            pos, ok = np.asarray(pos, np.float64), np.asarray(ok, bool)
            self._positions.append(pos)
            self._ok.append(ok)
            self._follow_tracks(pos, ok)
        elif not fresh and self.roi == "face" and self._frames_seen % self.step_frames == 0:
            self._follow_face(frame)
        rgb, dark, saturated = tile_stats(frame, self._tiles)
        self._times.append(float(t))
        self._rgb.append(rgb)
        self._dark.append(dark)
        self._saturated.append(saturated)
        self._since_estimate += 1
        if len(self._times) < self.window_frames and self._frames_seen % self.step_frames == 0:
            self._maybe_retrack(frame)  # lost tracks restart before the first window too, not a window later
        if len(self._times) >= self.window_frames and self._since_estimate >= self.step_frames:
            self._since_estimate = 0
            result = hold(self.results, self._estimate())
            self.results.append(result)
            self._maybe_retrack(frame)
            return result
        return None

    def _colour_tiles(self, box) -> list:
        if self.roi == "full":
            return tile_rects([box], FULL_FRAME_GRID)
        return tile_rects(facemod.region_rects(box, facemod.RPPG_REGIONS), REGION_GRID)

    def _follow_tracks(self, pos, ok) -> None:
        # the colour tiles follow the head: shifted by the tracked points' median motion
        if self.roi == "full" or not ok.any():
            return
        shift = np.median(pos[ok] - self._start_pts[ok], axis=0)
        # sub-2-px shifts (the heartbeat itself) keep the tiles still: rounding would make them flicker
        dx, dy = (0, 0) if np.all(np.abs(shift) < 2) else np.round(shift).astype(int)
        self._tiles = [(x0 + dx, y0 + dy, x1 + dx, y1 + dy) for x0, y0, x1, y1 in self._tile_origin]

    def _follow_face(self, frame) -> None:
        # nothing is tracked (rPPG alone): find the face again; move the tiles only when the face has
        # moved more than a twentieth of its width, so detector jitter does not shake the colour signal
        box = facemod.detect_face(frame)
        if box is None:
            return
        x, y, w, _ = self._box
        if max(abs(box[0] - x), abs(box[1] - y), abs(box[2] - w)) > w / 20:
            self._box = self.face_box = box
            self._tiles = self._tile_origin = self._colour_tiles(box)

    def _maybe_retrack(self, frame) -> None:
        # when most points are lost, start fresh ones; the next windows use only the new tracks
        if self._tracker is None or not self._ok:
            return
        if np.mean(self._ok[-1]) < 0.5:
            self._positions.clear()
            self._ok.clear()
            self._tile_origin = list(self._tiles)  # the new tracks start where the tiles are now
            if self.roi == "face":
                box = facemod.detect_face(frame)
                if box is not None:
                    self._box = self.face_box = box
                    self._rects = facemod.region_rects(box)
                    self._tile_origin = self._colour_tiles(box)
            self._tiles = self._tile_origin
            self._start_tracking(frame)

    # ── per window ──
    def _window_arrays(self):
        n = self.window_frames
        times = np.asarray(self._times, float)[-n:]
        fs = (len(times) - 1) / (times[-1] - times[0]) if times[-1] > times[0] else self.fps
        return times, fs

    def _estimate(self) -> WindowResult:
        n = self.window_frames
        times, fs = self._window_arrays()
        flags: list[str] = []
        if abs(fs - self.fps) / self.fps > 0.2:
            flags.append(f"frame rate {fs:.1f}/s differs from the nominal {self.fps:.1f}/s")
        try:
            check_band(fs, self.band)
        except ValueError as exc:
            flags.append(str(exc))
            return WindowResult(times[0], times[-1], math.nan, -math.inf, "low", "none", flags=flags)
        # resample to a uniform grid: live cameras deliver frames with jitter
        grid = np.linspace(times[0], times[-1], n)
        uniform = np.allclose(np.diff(times), np.diff(grid), atol=0.1 / fs)
        b_ibcg = s_ibcg = b_ibi = math.nan
        motion = {}
        b_rppg = s_rppg = math.nan
        if self.method in ("ibcg", "fused") and len(self._positions) >= n:
            pos = np.asarray(self._positions, float)[-n:]
            ok = np.asarray(self._ok, bool)[-n:]
            if not uniform:
                pos = _resample(times, pos, grid)
            w = ibcg_window(pos, ok, fs, self.band, self.combine, gate=self.gate)
            motion = w.motion_measures()
            if w.reason:
                flags.append("ibcg: " + w.reason)
            else:
                b_ibcg, s_ibcg, b_ibi = w.bpm, w.snr_db, w.bpm_intervals
                self.last_pulse["ibcg"] = (grid, w.pulse, w.estimate)
        elif self.method in ("ibcg", "fused"):
            flags.append("ibcg: tracks restarted, waiting for a full window")
        if self.method in ("rppg", "fused"):
            rgb = np.asarray(self._rgb, float)[-n:]
            dark = np.mean(np.asarray(self._dark)[-n:]) > 0.5
            saturated = np.mean(np.asarray(self._saturated)[-n:]) > 0.5
            if dark:
                flags.append("rppg: skin region too dark")
            if saturated:
                flags.append("rppg: skin region saturated (over-exposed)")
            inside = np.isfinite(rgb).all(axis=(0, 2)).any()
            if not inside:
                flags.append("rppg: no skin tile stayed inside the frame for the whole window")
            if not (dark or saturated) and inside:
                if not uniform:
                    rgb = _resample(times, rgb, grid)
                est, pulse, _ = tiled_rppg_estimate(rgb, fs, self.band, self.rppg_algorithm)
                b_rppg, s_rppg = est.bpm, est.snr_db
                self.last_pulse["rppg"] = (grid, pulse, est)
        bpm, snr, source, quality = fuse(b_ibcg, _finite(s_ibcg), b_rppg, _finite(s_rppg), self.min_snr_db,
                                         self.min_snr_db_rppg)
        if source == "ibcg≠rppg":
            flags.append(f"head motion says {b_ibcg:.0f} bpm, skin colour {b_rppg:.0f} bpm: one of them is wrong")
        return WindowResult(
            float(times[0]), float(times[-1]), float(bpm), float(snr), quality, source,
            bpm_ibcg=float(b_ibcg), snr_ibcg=_finite(s_ibcg), bpm_ibcg_intervals=float(b_ibi),
            bpm_rppg=float(b_rppg), snr_rppg=_finite(s_rppg), flags=flags, **motion,
        )

    # ── history for plots / reports ──
    def history(self) -> dict:
        out = {"times": np.asarray(self._times, float), "rgb": np.asarray(self._rgb, float)}
        if self._positions:
            out["positions"] = np.asarray(self._positions, float)
            out["ok"] = np.asarray(self._ok, bool)
        return out


def _finite(x: float) -> float:
    return float(x) if math.isfinite(x) else -math.inf


def _resample(times: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    flat = values.reshape(len(times), -1)
    out = np.stack([np.interp(grid, times, flat[:, j]) for j in range(flat.shape[1])], axis=1)
    return out.reshape((len(grid),) + values.shape[1:])


def summarize(results: list[WindowResult]) -> dict:
    """One rate for the whole recording: median of the good windows."""
    good = [r.bpm for r in results if r.quality == "good" and math.isfinite(r.bpm)]
    sources = [r.source for r in results if r.quality == "good"]
    if good:
        return {
            "bpm": float(np.median(good)),
            "quality": "good",
            "good_windows": len(good),
            "windows": len(results),
            "sources": {s: sources.count(s) for s in sorted(set(sources))},
        }
    finite = [r.bpm for r in results if math.isfinite(r.bpm)]
    return {
        "bpm": float(np.median(finite)) if finite else None,
        "quality": "low",
        "good_windows": 0,
        "windows": len(results),
        "sources": {},
        "message": "no window reached the quality threshold: treat this number as unreliable",
    }


__all__ = ["HeartRateMonitor", "METHODS", "ROIS", "summarize", "bandpass"]
