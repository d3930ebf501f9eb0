"""Video file or camera → window-by-window heart rate → report (JSON-able) and plot."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from edgekd.errors import EdgekdError, require
from edgekd.heartrate.fusion import DEFAULT_MIN_SNR_DB
from edgekd.heartrate.monitor import HeartRateMonitor, summarize
from edgekd.heartrate.signal import DEFAULT_BAND_HZ
from edgekd.utils.video import open_video

from edgekd.track.weights import SHIPPED_ENCODER_DIR as DEFAULT_ENCODER_DIR  # inside the package: any folder
# Fastest first. An INT8 file is used only when the encoder's card shows it within the tracking
# gate (INT8 adds ≤ INT8_GATE_PX mean error over float on the ground-truth sequences).
ENCODER_PREFERENCE = ("model.int8.tflite", "model.int8.onnx", "model.int8-mixed.tflite", "model.int8-mixed.onnx",
                      "model.tflite", "model.onnx")
INT8_GATE_PX = 0.1


def check_fps(fps: float | None) -> None:
    if fps is not None and (isinstance(fps, bool) or not math.isfinite(fps) or not 0 < fps <= 1000):
        raise EdgekdError(f"--fps must be a frame rate in (0, 1000] frames/s, got {fps:g}",
                          "pass the rate the video was recorded at, e.g. --fps 30, or omit it to use the file's")


def open_source(source, fps: float | None = None):
    """(cv2.VideoCapture, fps, is_camera) for a file path or an integer camera index."""
    cv2 = require("cv2", extra="device", package="opencv-python-headless")
    check_fps(fps)
    cap, is_camera = open_video(source)
    text = str(source)
    rate = fps or cap.get(cv2.CAP_PROP_FPS) or 0.0
    if not rate or not math.isfinite(rate) or rate > 240:
        if not is_camera:
            raise EdgekdError(f"{text} does not state its frame rate", "pass it with --fps")
        rate = 30.0  # cameras often report 0; the monitor re-measures from timestamps
    return cap, float(rate), is_camera


def check_duration(cap, rate: float, window_s: float, band=DEFAULT_BAND_HZ) -> None:
    """EdgekdError when a file is shorter than one analysis window (when its length is known)."""
    n_frames = int(cap.get(7))  # CAP_PROP_FRAME_COUNT; 0 when the container does not say
    if n_frames > 0 and n_frames / rate < window_s:
        raise EdgekdError(
            f"the video lasts {n_frames / rate:.1f} s, shorter than the {window_s:g} s analysis window",
            f"record at least {window_s:g} s, or use a shorter window (at least {2.0 / band[0]:.1f} s; less precise)",
        )


def int8_within_gate(directory: Path) -> dict[str, bool]:
    """{file name: passes} for the INT8 encoders whose tracking error the card records."""
    import json

    card = Path(directory) / "card.json"
    try:
        info = json.loads(card.read_text())
    except (OSError, ValueError):
        return {}
    gate = (info.get("int8_gate") or {}).get("files") or {}
    if gate:  # written by `edgekd track eval`: paired against float where float tracks
        return {f: bool(g.get("passes")) for f, g in gate.items()}
    tracking = info.get("tracking") or {}
    mean = {key.split(" ")[0]: row["mean_px"] for key, row in tracking.items() if "mean_px" in row}
    floats = [mean[f] for f in ("model.tflite", "model.onnx", "model.pt") if f in mean]
    if not floats:
        return {}
    return {f: m - min(floats) <= INT8_GATE_PX for f, m in mean.items() if "int8" in f}


def find_encoder(directory: Path = DEFAULT_ENCODER_DIR) -> Path | None:
    """The fastest exported DFE encoder in ``directory`` that tracks as well as float, or None.

    INT8 files count only if the card's tracking results show them within the 0.1 px gate; with
    no tracking results in the card, the float files are used.
    """
    passes = int8_within_gate(directory)
    for name in ENCODER_PREFERENCE:
        if "int8" in name and not passes.get(name, False):
            continue
        if (Path(directory) / name).is_file():
            return Path(directory) / name
    return None


def resolve_tracker(tracker: str, encoder) -> tuple[str, object, str]:
    """(tracker method, encoder path, note). DFE without an encoder file falls back to LK, saying so."""
    if tracker != "dfe":
        return tracker, None, ""
    if encoder and not Path(encoder).exists():
        raise EdgekdError(f"DFE encoder not found: {encoder}",
                          "give an exported encoder file (.onnx/.tflite) or its folder, or omit --encoder "
                          "to use the one edgekd ships")
    if encoder and Path(encoder).is_dir():
        path = find_encoder(Path(encoder))
    else:
        path = Path(encoder) if encoder else find_encoder()
    if path is not None and path.is_file():
        return "dfe", str(path), ""
    return "lk", None, (
        f"no exported DFE encoder found in {encoder or DEFAULT_ENCODER_DIR}; tracking with Lucas–Kanade instead. "
        "`edgekd track export` writes one (model.onnx, model.int8.tflite, ... and card.json)"
    )


def estimate_heart_rate(
    source,
    method: str = "fused",
    window_s: float = 10.0,
    step_s: float = 1.0,
    band: tuple[float, float] = DEFAULT_BAND_HZ,
    roi: str = "face",
    tracker: str = "lk",
    encoder=None,
    fps: float | None = None,
    max_seconds: float | None = None,
    max_points: int = 40,
    combine: str = "mean",
    on_window=None,
) -> dict:
    """Run the monitor over a whole file (or ``max_seconds`` of a camera) and report.

    Raises EdgekdError for input that cannot give a rate: no face, too short for the
    window, too low a frame rate for the band.
    """
    cap, rate, is_camera = open_source(source, fps)
    tracker, encoder, note = resolve_tracker(tracker, encoder)
    if not is_camera:
        try:
            check_duration(cap, rate, window_s, band)
        except EdgekdError:
            cap.release()
            raise
    monitor = HeartRateMonitor(
        rate, method=method, window_s=window_s, step_s=step_s, band=band, roi=roi,
        tracker=tracker, encoder=encoder, max_points=max_points, combine=combine, keep_history=True,
    )
    t_start = time.perf_counter()
    frames = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            t = (time.perf_counter() - t_start) if is_camera else None
            result = monitor.push(frame, t)
            frames += 1
            if result is not None and on_window is not None:
                on_window(result)
            if max_seconds is not None and frames >= max_seconds * rate:
                break
    finally:
        cap.release()
    elapsed = time.perf_counter() - t_start
    if frames == 0:
        raise EdgekdError(f"no frames could be read from {source}", "the file is empty, truncated or not a video")
    if not monitor.results:
        got = frames / rate
        raise EdgekdError(
            f"only {got:.1f} s of usable video, shorter than the {window_s:g} s analysis window",
            "record longer, or shorten --window",
        )
    return {
        "source": str(source),
        "method": method,
        "tracker": tracker,
        "encoder": encoder,
        "notes": [note] if note else [],
        "fps": rate,
        "frames": frames,
        "processing_fps": frames / elapsed if elapsed > 0 else None,
        "band_hz": list(band),
        "window_s": window_s,
        "step_s": step_s,
        "roi": roi,
        "face_box": None if monitor.face_box is None else list(map(int, monitor.face_box)),
        "summary": summarize(monitor.results),
        "windows": [r.to_dict() for r in monitor.results],
        "_monitor": monitor,  # dropped before writing JSON; the plot reads it
    }


def estimate_from_tracks(
    path,
    fps: float | None = None,
    duration: float | None = None,
    window_s: float = 10.0,
    step_s: float = 1.0,
    band: tuple[float, float] = DEFAULT_BAND_HZ,
    combine: str = "mean",
    min_snr_db: float = DEFAULT_MIN_SNR_DB,
    on_window=None,
    gate=None,
) -> dict:
    """Heart rate from feature trajectories (``edgekd heartrate --tracks``): the video path's iBCG stage and gate
    (``gate``: an ``ibcg.MotionGate``; None: the shipped ``ibcg.GATE``)."""
    from edgekd.heartrate.fusion import WindowResult, fuse, hold
    from edgekd.heartrate.ibcg import ibcg_window
    from edgekd.heartrate.monitor import _resample, summarize
    from edgekd.heartrate.signal import check_band
    from edgekd.heartrate.tracks import load_tracks

    check_window(window_s, step_s, band)
    tracks = load_tracks(path, fps, duration)
    rate = tracks.fps
    try:
        check_band(rate, band)
    except ValueError as exc:
        raise EdgekdError(str(exc), "check --fps, or lower the band with --band LOW,HIGH") from None
    n, step = int(round(window_s * rate)), max(1, int(round(step_s * rate)))
    if tracks.frames < n:
        raise EdgekdError(f"the trajectories last {tracks.frames / rate:.1f} s, shorter than the {window_s:g} s window",
                          "use a shorter --window (less precise) or a longer recording")
    results = []
    for end in range(n, tracks.frames + 1, step):
        times = tracks.times[end - n : end]
        pos, ok = tracks.positions[end - n : end], tracks.ok[end - n : end]
        fs = (n - 1) / (times[-1] - times[0])
        grid = np.linspace(times[0], times[-1], n)
        if not np.allclose(np.diff(times), np.diff(grid), atol=0.1 / fs):
            pos = _resample(times, np.where(np.isfinite(pos), pos, 0.0), grid)
        w = ibcg_window(pos, ok, fs, band, combine, gate=gate)
        bpm, snr, source, quality = fuse(w.bpm, w.snr_db if math.isfinite(w.snr_db) else -math.inf, math.nan,
                                         -math.inf, min_snr_db)
        r = WindowResult(float(times[0]), float(times[-1]), float(bpm), float(snr), quality, source,
                         bpm_ibcg=float(w.bpm), snr_ibcg=float(snr), bpm_ibcg_intervals=float(w.bpm_intervals),
                         flags=["ibcg: " + w.reason] if w.reason else [], **w.motion_measures())
        results.append(hold(results, r))
        if on_window is not None:
            on_window(r)
    return {"source": str(path), "method": "ibcg", "tracker": "file", "fps": rate, "rate_source": tracks.rate_source,
            "notes": tracks.notes, "frames": tracks.frames, "points": int(tracks.positions.shape[1]),
            "band_hz": list(band), "window_s": window_s, "step_s": step_s, "summary": summarize(results),
            "windows": [r.to_dict() for r in results]}


def check_window(window_s: float, step_s: float, band) -> None:
    for name, v in (("--window", window_s), ("--step", step_s)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise EdgekdError(f"{name} must be a positive number of seconds, got {v!r}")
    if window_s < 2.0 / band[0]:
        raise EdgekdError(f"a {window_s:g} s window is too short for rates down to {band[0] * 60:.0f} bpm",
                          f"use --window {math.ceil(2.0 / band[0])} or longer")


def compare_with_reference(report: dict, ecg_path, lead: str | None = None) -> dict:
    """Per-window and whole-recording errors against an ECG recorded with the video (same start time)."""
    from edgekd.heartrate.reference import ecg_reference, rate_between

    ref = ecg_reference(ecg_path, lead)
    rows = []
    for w in report["windows"]:
        r = rate_between(ref["intervals_s"], w["t_start"], w["t_end"])
        est = w["bpm"]
        rows.append({"t_start": w["t_start"], "t_end": w["t_end"], "bpm": est, "quality": w["quality"],
                     "reference_bpm": None if math.isnan(r) else r,
                     "error_bpm": None if est is None or math.isnan(r) else est - r})
    s = report["summary"]
    return {"ecg": str(ecg_path), "lead": ref["lead"], "reference_bpm": ref["bpm"], "beats": len(ref["beats_s"]),
            "summary_error_bpm": None if s["bpm"] is None else s["bpm"] - ref["bpm"], "windows": rows}


def public(report: dict) -> dict:
    return {k: v for k, v in report.items() if not k.startswith("_")}


def plot_report(report: dict, path) -> Path:
    """Trajectories, last window's spectrum and the rate over time, in one PNG."""
    require("matplotlib", extra="train")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monitor: HeartRateMonitor = report["_monitor"]
    hist = monitor.history()
    fig, axes = plt.subplots(3, 1, figsize=(9, 9))
    ax = axes[0]
    if "positions" in hist and len(hist["positions"]) > 1:
        pos = hist["positions"]
        t = hist["times"][-len(pos) :]
        y = pos[:, :, 1] - np.nanmean(pos[:, :, 1], axis=0)
        ax.plot(t, y, lw=0.5, alpha=0.6)
        ax.set_ylabel("vertical position − mean (px)")
        ax.set_title(f"{y.shape[1]} tracked skin points ({report['tracker']})")
    elif len(hist["rgb"]):
        rgb = np.nanmean(hist["rgb"], axis=1)  # (T, tiles, 3) -> the mean over the skin tiles
        for k, c in enumerate("rgb"):
            ax.plot(hist["times"], rgb[:, k] / np.nanmean(rgb[:, k]), c, lw=0.7)
        ax.set_ylabel("mean colour / its mean")
        ax.set_title(f"skin colour, mean of {hist['rgb'].shape[1]} tiles")
    ax.set_xlabel("time (s)")
    ax = axes[1]
    lo, hi = report["band_hz"]
    for name, style in (("ibcg", "C0"), ("rppg", "C3")):
        if name in monitor.last_pulse:
            _, _, est = monitor.last_pulse[name]
            sel = (est.freqs >= lo * 0.5) & (est.freqs <= hi * 1.2)
            p = est.power[sel] / max(est.power[sel].max(), 1e-30)
            ax.plot(est.freqs[sel] * 60, p, style, label=f"{name}: {est.bpm:.1f} bpm, SNR {est.snr_db:.1f} dB")
    ax.axvspan(lo * 60, hi * 60, color="0.9", zorder=0)
    ax.set_xlabel("rate (bpm)")
    ax.set_ylabel("power (last window, normalised)")
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[2]
    w = report["windows"]
    tc = [(r["t_start"] + r["t_end"]) / 2 for r in w]
    for key, style, label in (("bpm_ibcg", "C0.", "iBCG"), ("bpm_rppg", "C3.", "rPPG")):
        vals = [np.nan if r[key] is None else r[key] for r in w]
        if np.isfinite(vals).any():
            ax.plot(tc, vals, style, ms=3, alpha=0.5, label=label)
    good = [(t, r["bpm"]) for t, r in zip(tc, w) if r["quality"] == "good" and r["bpm"] is not None]
    if good:
        ax.plot(*zip(*good), "k-o", ms=3, lw=1, label="reported (good quality)")
    ax.set_xlabel("window centre (s)")
    ax.set_ylabel("heart rate (bpm)")
    s = report["summary"]
    ax.set_title(f"summary: {s['bpm']:.1f} bpm ({s['quality']})" if s["bpm"] is not None else "no estimate")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
