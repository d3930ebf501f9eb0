"""Classify the frames of a camera or a video file, one prediction per frame, with the rate achieved."""

from __future__ import annotations

import time
from typing import Iterator

from edgekd.errors import EdgekdError, require
from edgekd.runtime.classifier import Classifier
from edgekd.utils.video import open_video


def classify_stream(classifier: Classifier, source, seconds: float | None = None,
                    max_frames: int | None = None) -> Iterator[dict]:
    """Yield ``{"frame", "time_s", "prediction", "frames_per_s", "frame_bgr"}`` for every frame read.

    ``frames_per_s`` is what this loop achieved so far (reading, resizing and the model), the
    number a user of a live app sees. A camera needs ``seconds`` or ``max_frames`` to stop.
    """
    cv2 = require("cv2", extra="device", package="opencv-python-headless")
    if str(source).isdigit() and seconds is None and max_frames is None:
        raise EdgekdError("a camera stream needs --seconds (or --max-frames) to stop", "e.g. --seconds 30")
    cap, is_camera = open_video(source)
    started = time.perf_counter()
    frame = 0
    try:
        while max_frames is None or frame < max_frames:
            ok, bgr = cap.read()
            if not ok:
                if is_camera:
                    raise EdgekdError(f"camera {source} stopped giving frames", "check the camera and try again")
                break
            prediction = classifier.predict(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            elapsed = time.perf_counter() - started
            frame += 1
            yield {"frame": frame - 1, "time_s": round(elapsed, 4), "prediction": prediction,
                   "frames_per_s": frame / elapsed if elapsed > 0 else 0.0, "frame_bgr": bgr}
            if seconds is not None and elapsed >= seconds:
                break
    finally:
        cap.release()
    if frame == 0:
        raise EdgekdError(f"no frame could be read from {source}", "is it an empty or broken video?")
