#!/usr/bin/env python3
"""Live image classification on a Raspberry Pi (or any Linux box) from a camera or a video file.

Runtime-only: needs ``pip install "edgekd[device]"`` (numpy, onnxruntime, ai-edge-litert,
opencv-python-headless). No PyTorch. Runs an exported classifier folder (``edgekd compress``
writes one under its run folder: ``runs/compress/export/<name>/``) through
``edgekd.runtime.Classifier``: the card gives the input size, normalisation and class names,
and the file is the fastest kind that passed the export's accuracy gate (``--format`` picks one).

    python devices/raspberry-pi/classify_app.py MODEL_DIR                  # camera 0, until Ctrl-C
    python devices/raspberry-pi/classify_app.py MODEL_DIR clip.mp4 --json out.json
    python devices/raspberry-pi/classify_app.py MODEL_DIR 0 --seconds 30 --overlay live.mp4

Every second it prints the last frame's label and probability and the frames/s achieved
(camera read, resize and model together).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if (ROOT / "edgekd").is_dir() and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="exported classifier folder (card.json beside the model files)")
    p.add_argument("source", nargs="?", default="0", help="camera index (default 0) or a video file")
    p.add_argument("--format", default=None, help="onnx, onnx-int8, tflite or tflite-int8 (default: the card's fastest within the gate)")
    p.add_argument("--threads", type=int, default=1, help="runtime threads")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--overlay", default=None, help="write the video with the label drawn (.mp4)")
    p.add_argument("--json", default=None, help="write every frame's prediction and the frame rate here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import cv2

    from edgekd.errors import EdgekdError
    from edgekd.runtime import Classifier, classify_stream

    rows, writer, last_print = [], None, -1.0
    try:
        clf = Classifier(args.model, format=args.format, threads=args.threads)
        for warning in clf.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"{clf.directory.name}: {clf.path.name} ({clf.format}); source {args.source}", flush=True)
        seconds = args.seconds if args.seconds is not None or not str(args.source).isdigit() else float("inf")
        frames = classify_stream(clf, args.source, seconds=seconds)
        for r in frames:
            pred = r["prediction"]
            rows.append({"frame": r["frame"], "time_s": r["time_s"], **pred.to_dict()})
            if r["time_s"] - last_print >= 1.0:
                last_print = r["time_s"]
                print(f"{r['time_s']:7.1f} s  {pred.label:>14s} ({pred.probability:.2f})  {r['frames_per_s']:5.1f} frames/s",
                      flush=True)
            if args.overlay:
                frame = r["frame_bgr"]
                if writer is None:
                    writer = cv2.VideoWriter(args.overlay, cv2.VideoWriter_fourcc(*"mp4v"), 30.0, frame.shape[1::-1])
                cv2.putText(frame, f"{pred.label} {pred.probability:.2f}  {r['frames_per_s']:.1f} fps", (8, 24),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 2)
                writer.write(frame)
    except EdgekdError as exc:
        print(f"error: {exc.message}" + (f"\n  → {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        if writer is not None:
            writer.release()
    fps = len(rows) / rows[-1]["time_s"] if rows and rows[-1]["time_s"] > 0 else None
    print(f"{len(rows)} frames" + (f" at {fps:.1f} frames/s" if fps else ""))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"model": args.model, "file": clf.path.name, "format": clf.format,
                                               "source": args.source, "frames": len(rows), "frames_per_s": fps,
                                               "predictions": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
