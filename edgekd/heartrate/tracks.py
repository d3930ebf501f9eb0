"""Feature trajectories from a file: the CSV ``edgekd track --out`` writes, an ``.npz`` or a MATLAB ``.mat``.

- CSV: ``frame, time_s, point, x, y, ok`` (one row per point and frame; x, y empty when lost).
- ``.npz``: ``positions`` (T, P, 2) or ``x``, ``y`` (P, T); optional ``ok`` (T, P), ``time_s`` (T,), ``fps``.
- ``.mat``: ``x``, ``y`` arrays (points × frames), as MATLAB's ``vision.PointTracker`` scripts save them;
  optional ``t`` / ``time_s`` and ``fps``. Read with scipy when it is installed, else numpy's
  reader for MATLAB level-5 files is not available and the user is told so.

The frame rate is decided explicitly and recorded: timestamps in the file win over a
stated ``fps`` (a disagreement over 2 % is reported); without timestamps the rate comes
from ``fps`` (the file's or the caller's) or from a known ``duration``; with none of them
the file is refused — a wrong rate scales every heart rate by the same factor.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekd.errors import EdgekdError


@dataclass
class Tracks:
    positions: np.ndarray  # (T, P, 2) float, NaN where lost
    ok: np.ndarray  # (T, P) bool
    times: np.ndarray  # (T,) seconds
    fps: float
    rate_source: str  # where the frame rate came from
    notes: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def frames(self) -> int:
        return len(self.times)


def _check_rate(value, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise EdgekdError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise EdgekdError(f"{what} must be positive, got {value!r}")
    return v


def _from_arrays(x: np.ndarray, y: np.ndarray, ok, times, file_fps, name: str):
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2 or min(x.shape) < 1:
        raise EdgekdError(f"{name}: x and y must be two arrays of the same shape (points × frames), "
                          f"got {x.shape} and {y.shape}")
    positions = np.stack([x.T, y.T], axis=-1)  # (T, P, 2)
    valid = np.isfinite(positions).all(axis=2)
    if ok is not None:
        ok = np.asarray(ok)
        if ok.shape != valid.shape:
            raise EdgekdError(f"{name}: ok must be (frames, points) = {valid.shape}, got {ok.shape}")
        valid &= ok.astype(bool)
    return positions, valid, times, file_fps


def _read_npz(path: Path):
    import zipfile
    import zlib

    try:
        z = np.load(path, allow_pickle=False)
        keys = set(z.files)
        if "positions" in keys:
            pos = np.asarray(z["positions"], dtype=np.float64)
            if pos.ndim != 3 or pos.shape[2] != 2:
                raise EdgekdError(f"{path.name}: positions must be (frames, points, 2), got {pos.shape}")
            x, y = pos[:, :, 0].T, pos[:, :, 1].T
        elif {"x", "y"} <= keys:
            x, y = z["x"], z["y"]
        else:
            raise EdgekdError(f"{path.name} has arrays {sorted(keys)}", "store positions (T, P, 2) or x, y (points × frames)")
        ok = z["ok"] if "ok" in keys else None
        times = np.asarray(z["time_s"], dtype=np.float64) if "time_s" in keys else None
        fps = float(np.asarray(z["fps"]).reshape(-1)[0]) if "fps" in keys else None
    except EdgekdError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, zlib.error, EOFError, KeyError, IndexError, TypeError) as exc:
        raise EdgekdError(f"{path} is not a readable trajectory .npz ({type(exc).__name__})") from None
    return _from_arrays(x, y, ok, times, fps, path.name)


def _read_mat(path: Path):
    try:
        from scipy.io import loadmat
    except ImportError:
        raise EdgekdError("reading .mat files needs scipy", 'pip install scipy (or "edgekd[train]"), or save the '
                                                            "trajectories as .npz / .csv") from None
    try:
        m = loadmat(str(path))
    except Exception as exc:  # noqa: BLE001 - scipy raises many kinds on damaged files
        raise EdgekdError(f"{path} is not a readable MATLAB file ({type(exc).__name__})") from None
    if "x" not in m or "y" not in m:
        raise EdgekdError(f"{path.name} has variables {sorted(k for k in m if not k.startswith('__'))}",
                          "the trajectories must be arrays x and y (points × frames)")
    times = next((np.asarray(m[k], dtype=np.float64).reshape(-1) for k in ("time_s", "t") if k in m), None)
    fps = float(np.asarray(m["fps"]).reshape(-1)[0]) if "fps" in m else None
    try:
        return _from_arrays(m["x"], m["y"], m.get("ok"), times, fps, path.name)
    except (TypeError, ValueError) as exc:
        raise EdgekdError(f"{path.name}: x and y must be numeric arrays ({type(exc).__name__})") from None


def _read_csv(path: Path):
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EdgekdError(f"cannot read {path} as CSV ({type(exc).__name__})") from None
    need = {"frame", "point", "x", "y"}
    if not rows or not need <= set(rows[0]):
        raise EdgekdError(f"{path.name} is not a track CSV", "expected columns frame, time_s, point, x, y, ok "
                                                            "(what `edgekd track --out` writes)")
    try:
        frames = np.array([int(r["frame"]) for r in rows])
        points = np.array([int(r["point"]) for r in rows])
        xs = np.array([float(r["x"]) if r["x"] not in ("", None) else np.nan for r in rows])
        ys = np.array([float(r["y"]) if r["y"] not in ("", None) else np.nan for r in rows])
        oks = np.array([r.get("ok", "1") not in ("0", "false", "False", "") for r in rows])
        ts = np.array([float(r["time_s"]) for r in rows]) if "time_s" in rows[0] and all(r.get("time_s") for r in rows) else None
    except (TypeError, ValueError, KeyError) as exc:
        raise EdgekdError(f"{path.name}: a row does not parse ({type(exc).__name__}: {str(exc)[:60]})",
                          "frame and point are integers, x, y and time_s numbers") from None
    if frames.min() < 0 or points.min() < 0:
        raise EdgekdError(f"{path.name}: frame and point numbers must be ≥ 0")
    fu, fi = np.unique(frames, return_inverse=True)
    pu, pi = np.unique(points, return_inverse=True)
    if len(fu) * len(pu) > 50_000_000:
        raise EdgekdError(f"{path.name}: {len(fu)} frames × {len(pu)} points is too many for one file")
    x = np.full((len(pu), len(fu)), np.nan)
    y = np.full((len(pu), len(fu)), np.nan)
    ok = np.zeros((len(fu), len(pu)), bool)
    x[pi, fi], y[pi, fi], ok[fi, pi] = xs, ys, oks
    times = None
    if ts is not None:
        times = np.full(len(fu), np.nan)
        times[fi] = ts
    return _from_arrays(x, y, ok, times, None, path.name)


def load_tracks(path: str | Path, fps: float | None = None, duration: float | None = None) -> Tracks:
    """Trajectories and a frame rate whose origin is recorded (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise EdgekdError(f"trajectory file not found: {path}")
    suffix = path.suffix.lower()
    reader = {".csv": _read_csv, ".npz": _read_npz, ".mat": _read_mat}.get(suffix)
    if reader is None:
        raise EdgekdError(f"{path.name}: trajectories are read from .csv, .npz or .mat files")
    positions, ok, times, file_fps = reader(path)
    n = len(positions)
    if n < 2:
        raise EdgekdError(f"{path.name} holds {n} frame(s): a heart rate needs seconds of motion")
    notes: list[str] = []
    if fps is not None:
        fps = _check_rate(fps, "--fps")
    if duration is not None:
        duration = _check_rate(duration, "--duration")
    if times is not None and np.isfinite(times).all() and np.all(np.diff(times) > 0):
        rate = (n - 1) / (times[-1] - times[0])
        source = "the file's timestamps"
        for given, what in ((fps, "--fps"), (file_fps, "the file's fps"),
                            ((n - 1) / duration if duration else None, "--duration")):
            if given and abs(given - rate) / rate > 0.02:
                notes.append(f"the timestamps give {rate:.2f} frames/s but {what} says {given:.2f}: "
                             "using the timestamps")
    elif times is not None:
        raise EdgekdError(f"{path.name}: its timestamps are not strictly increasing", "fix the time_s column or drop it")
    else:
        if fps and duration:
            raise EdgekdError("give --fps or --duration, not both")
        if fps:
            rate, source = fps, "--fps (the file has no timestamps)"
            if file_fps and abs(file_fps - fps) / fps > 0.02:
                notes.append(f"the file says {file_fps:.2f} frames/s, --fps {fps:.2f}: using --fps")
        elif duration:
            rate, source = (n - 1) / duration, f"--duration {duration:g} s over {n} frames"
        elif file_fps:
            rate, source = _check_rate(file_fps, "the file's fps"), "the file's fps"
        else:
            raise EdgekdError(f"{path.name} has no timestamps and no frame rate",
                              "pass --fps (frames per second of the video the points were tracked in) or "
                              "--duration (seconds it lasted); a wrong rate scales every heart rate")
        times = np.arange(n) / rate
    return Tracks(positions, ok, times, float(rate), source, notes, str(path))
