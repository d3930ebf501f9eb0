"""Open a video file or a camera with OpenCV, with errors a user can act on."""

from __future__ import annotations

from pathlib import Path

from edgekd.errors import EdgekdError, require


def open_video(source):
    """(cv2.VideoCapture, is_camera) for a file path or an integer camera index such as ``0``."""
    cv2 = require("cv2", extra="device", package="opencv-python-headless")
    text = str(source)
    is_camera = text.isdigit()
    if not is_camera and not Path(text).is_file():
        raise EdgekdError(f"video not found: {text}", "give a video file or a camera index such as 0")
    cap = cv2.VideoCapture(int(text) if is_camera else text)
    if not cap.isOpened():
        raise EdgekdError(
            f"cannot open {'camera ' + text if is_camera else 'video ' + text}",
            "check the camera is connected and free" if is_camera else "use a file OpenCV/FFmpeg can read (mp4, avi, mkv)",
        )
    return cap, is_camera
