#!/usr/bin/env python3
"""Live heart rate on a Raspberry Pi (or any Linux box) from a camera or a video file.

Runtime-only: needs ``pip install "edgekd[device]"`` (numpy, onnxruntime, ai-edge-litert,
opencv-python-headless, psutil). No PyTorch. Tracks skin features with the fastest file of the
DFE encoder edgekd ships (``edgekd/track/weights/dfe-encoder/``, inside the installed package) that
passes the INT8 tracking gate (its card.json says which); ``--encoder`` picks another file or folder.

    python devices/raspberry-pi/heart_rate_app.py                 # camera 0, runs until Ctrl-C
    python devices/raspberry-pi/heart_rate_app.py clip.mp4 --json out.json
    python devices/raspberry-pi/heart_rate_app.py 0 --overlay live.mp4 --seconds 60

Every second it prints the rate of the last window, its quality, which estimator it
came from (ibcg = head motion, rppg = skin colour) and the processing frames/s.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if (ROOT / "edgekd").is_dir() and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", nargs="?", default="0", help="camera index (default 0) or a video file")
    p.add_argument("--method", default="fused", choices=["ibcg", "rppg", "fused"])
    p.add_argument("--tracker", default="dfe", help="dfe (exported encoder), lk, ncc, sift, orb")
    p.add_argument("--encoder", default=None, help="encoder file or export folder; default: the fastest file of the "
                                                    "shipped encoder that passes the INT8 tracking gate")
    p.add_argument("--window", type=float, default=10.0, help="analysis window, s")
    p.add_argument("--step", type=float, default=1.0, help="seconds between estimates")
    p.add_argument("--roi", default="face", choices=["face", "full"])
    p.add_argument("--points", type=int, default=None,
                   help="skin features to track (default 40; 16 with DFE, whose cost grows with the points: "
                        "21 vs 8 frames/s on a 2-core x86, benchmarks/heartrate.md)")
    p.add_argument("--width", type=int, default=640, help="camera capture width")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
    p.add_argument("--threads", type=int, default=None, help="runtime threads (default: the runtime's)")
    p.add_argument("--overlay", default=None, help="write an annotated video (mp4) here")
    p.add_argument("--json", default=None, help="write every estimate and the frames/s here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import cv2
    import numpy as np

    from edgekd.errors import EdgekdError
    from edgekd.heartrate.monitor import HeartRateMonitor, summarize
    from edgekd.heartrate.pipeline import check_duration, open_source, resolve_tracker

    try:
        cap, fps, is_camera = open_source(args.source)
        if is_camera:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, args.width)
        else:
            check_duration(cap, fps, args.window)
        # no --encoder: the encoder edgekd ships (its fastest file within the INT8 tracking gate)
        tracker, encoder, note = resolve_tracker(args.tracker, args.encoder)
        if note:
            print(f"note: {note}", file=sys.stderr)
        print(f"source {args.source} at {fps:.1f} frames/s; method {args.method}; tracker {tracker}"
              + (f" ({encoder})" if encoder else ""), flush=True)
        monitor = HeartRateMonitor(fps, method=args.method, window_s=args.window, step_s=args.step,
                                   roi=args.roi, tracker=tracker, encoder=encoder,
                                   max_points=args.points or (16 if tracker == "dfe" else 40))
    except EdgekdError as exc:
        print(f"error: {exc.message}" + (f"\n  → {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 2

    writer = None
    last = None
    frames, t0 = 0, time.perf_counter()
    busy = 0.0  # time spent in the monitor (tracking + estimation), excludes decoding
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            now = time.perf_counter()
            t = now - t0 if is_camera else None
            try:
                result = monitor.push(frame, t)
            except EdgekdError as exc:
                print(f"error: {exc.message}" + (f"\n  → {exc.hint}" if exc.hint else ""), file=sys.stderr)
                return 2
            busy += time.perf_counter() - now
            frames += 1
            if result is not None:
                last = result
                rate = "  -- " if math.isnan(result.bpm) else f"{result.bpm:5.1f}"
                loop_fps = frames / (time.perf_counter() - t0)
                print(f"{result.t_end:7.1f} s  {rate} bpm  {result.quality:4s} {result.source:9s} "
                      f"SNR {result.snr_db:5.1f} dB  {loop_fps:5.1f} frames/s"
                      + (f"  [{'; '.join(result.flags)}]" if result.flags else ""), flush=True)
            if args.overlay:
                writer = writer or cv2.VideoWriter(args.overlay, cv2.VideoWriter_fourcc(*"mp4v"), fps, frame.shape[1::-1])
                writer.write(_annotate(frame, monitor, last, frames / max(time.perf_counter() - t0, 1e-9)))
            if args.seconds is not None and frames >= args.seconds * fps:
                break
    except KeyboardInterrupt:
        pass
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    elapsed = time.perf_counter() - t0
    summary = summarize(monitor.results)
    perf = {
        "frames": frames,
        "seconds": elapsed,
        "frames_per_s": frames / elapsed if elapsed else None,
        "monitor_frames_per_s": frames / busy if busy else None,
        "tracking_ms_per_frame": 1000 * monitor.track_seconds / max(frames - 1, 1),
    }
    if summary["bpm"] is None:
        print("no heart rate: " + (last.flags[0] if last is not None and last.flags else "not enough video"))
    else:
        print(f"heart rate {summary['bpm']:.1f} bpm ({summary['quality']} quality, "
              f"{summary['good_windows']}/{summary['windows']} good windows)")
    print(f"{frames} frames in {elapsed:.1f} s: {perf['frames_per_s']:.1f} frames/s overall, "
          f"{perf['monitor_frames_per_s']:.1f} frames/s in the monitor, tracking {perf['tracking_ms_per_frame']:.2f} ms/frame")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "source": args.source, "tracker": tracker, "encoder": encoder, "method": args.method,
            "summary": summary, "performance": perf, "windows": [r.to_dict() for r in monitor.results],
        }, indent=2))
    return 0


def _annotate(frame, monitor, result, fps):
    import cv2

    out = frame.copy()
    if monitor.face_box is not None:
        x, y, w, h = monitor.face_box
        cv2.rectangle(out, (x, y), (x + w, y + h), (0, 200, 0), 1)
    if monitor.points is not None and monitor._positions:
        for (px, py), ok in zip(monitor._positions[-1], monitor._ok[-1]):
            if ok:
                cv2.circle(out, (int(round(px)), int(round(py))), 1, (0, 255, 255), -1)
    text = "measuring..."
    if result is not None:
        text = "--" if math.isnan(result.bpm) else f"{result.bpm:.0f} bpm ({result.quality}, {result.source})"
    cv2.putText(out, text, (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 255), 2)
    cv2.putText(out, f"{fps:.1f} frames/s", (10, 50), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    return out


if __name__ == "__main__":
    sys.exit(main())
