"""Voluntary head motion for test trajectories: what a person does in front of a webcam besides having a pulse.

iBCG reads a sub-pixel recoil; nodding, turning, glancing, talking and shifting posture move the same
points by pixels to tens of pixels, some of it at heart-rate frequencies. These generators add such
motion to feature trajectories ``(T, P, 2)`` so the gate can be tested against it: every amplitude is
a fraction of the tracked region's height (``scale``), so a motion means the same on any resolution.

    moved = positions + voluntary_motion("nod", positions[0], n_frames, fps, rng, scale=200.0)
"""

from __future__ import annotations

import numpy as np

from edgekd.errors import EdgekdError

KINDS = ("nod", "turn", "glance", "talk", "posture")


def _episodes(n: int, fps: float, rng, count: int, length_s: tuple[float, float]) -> list[tuple[int, int]]:
    out = []
    for _ in range(count):
        length = int(rng.uniform(*length_s) * fps)
        start = int(rng.uniform(0, max(1, n - length)))
        out.append((start, min(n, start + length)))
    return out


def _smooth_step(n: int, start: int, rise: int) -> np.ndarray:
    s = np.clip((np.arange(n) - start) / max(1, rise), 0, 1)
    return s * s * (3 - 2 * s)


def voluntary_motion(kind: str, points0: np.ndarray, n_frames: int, fps: float, rng: np.random.Generator,
                     scale: float, strength: float = 1.0) -> np.ndarray:
    """Displacement ``(n_frames, P, 2)`` in px of the points ``points0 (P, 2)``.

    - ``nod``: vertical oscillation at 0.1–1.5 Hz, 1–4 % of ``scale``, in two to three episodes of 4–8 s;
    - ``turn``: a sudden horizontal turn (5–10 %) over 0.2–0.4 s, held, and back;
    - ``glance``: several quick small turns (1–2 %, 0.15 s) held for 0.5–1.5 s;
    - ``talk``: the points below the region's middle move with the jaw, 3–6 Hz, 0.3–1 %, in episodes;
    - ``posture``: a slow shift (3–6 %) over 1–3 s, twice.
    ``strength`` multiplies every amplitude.
    """
    if kind not in KINDS:
        raise EdgekdError(f"unknown voluntary motion {kind!r}", f"use one of: {', '.join(KINDS)}")
    p = np.asarray(points0, dtype=np.float64)
    t = np.arange(n_frames) / fps
    out = np.zeros((n_frames, len(p), 2))
    a = strength * scale
    if kind == "nod":
        for s, e in _episodes(n_frames, fps, rng, int(rng.integers(2, 4)), (4.0, 8.0)):
            f, amp = rng.uniform(0.1, 1.5), a * rng.uniform(0.01, 0.04)
            envelope = np.sin(np.pi * (t[s:e] - t[s]) / max(t[e - 1] - t[s], 1e-9)) ** 2  # starts and ends still
            out[s:e, :, 1] += (amp * envelope * np.sin(2 * np.pi * f * (t[s:e] - t[s])))[:, None]
    elif kind in ("turn", "glance"):
        count, size, rise, hold = ((1, (0.05, 0.10), (0.2, 0.4), (2.0, 5.0)) if kind == "turn"
                                   else (int(rng.integers(3, 6)), (0.01, 0.02), (0.15, 0.15), (0.5, 1.5)))
        for _ in range(count):
            start = int(rng.uniform(0.1, 0.8) * n_frames)
            shift = a * rng.uniform(*size) * rng.choice([-1, 1])
            r = int(rng.uniform(*rise) * fps)
            back = start + r + int(rng.uniform(*hold) * fps)
            profile = _smooth_step(n_frames, start, r) - _smooth_step(n_frames, back, r)
            out[:, :, 0] += (shift * profile)[:, None]
            out[:, :, 1] += (0.2 * shift * profile)[:, None]  # heads turn about a tilted axis
    elif kind == "talk":
        lower = p[:, 1] > np.median(p[:, 1])  # image y grows downwards: the jaw side of the region
        for s, e in _episodes(n_frames, fps, rng, 3, (3.0, 6.0)):
            n = e - s
            spec = np.fft.rfft(rng.normal(size=n))
            f = np.fft.rfftfreq(n, 1 / fps)
            spec[(f < 3.0) | (f > 6.0)] = 0
            jaw = np.fft.irfft(spec, n=n)
            jaw *= a * rng.uniform(0.003, 0.01) / (jaw.std() + 1e-12)
            out[s:e, lower, 1] += jaw[:, None]
    else:  # posture
        for _ in range(2):
            start = int(rng.uniform(0.05, 0.8) * n_frames)
            out[:, :, :] += (_smooth_step(n_frames, start, int(rng.uniform(1.0, 3.0) * fps))[:, None, None]
                             * (a * rng.uniform(0.03, 0.06) * rng.normal(size=2) / np.sqrt(2)))
    return out
