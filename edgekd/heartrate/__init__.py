"""Heart rate from video on the device: motion (iBCG), colour (rPPG) and their fusion.

Device side: numpy + OpenCV (+ the tracker's encoder runtime). Never torch, never scipy
at import time.

    from edgekd.heartrate import HeartRateMonitor, estimate_heart_rate
    report = estimate_heart_rate("face.mp4", method="fused")
    report["summary"]  # {"bpm": 71.8, "quality": "good", ...}
"""

from edgekd.heartrate.fusion import WindowResult, fuse
from edgekd.heartrate.monitor import METHODS, HeartRateMonitor, summarize
from edgekd.heartrate.signal import spectral_rate

__all__ = ["HeartRateMonitor", "METHODS", "WindowResult", "fuse", "spectral_rate", "summarize", "estimate_heart_rate"]


def estimate_heart_rate(*args, **kw):
    from edgekd.heartrate.pipeline import estimate_heart_rate as run

    return run(*args, **kw)
