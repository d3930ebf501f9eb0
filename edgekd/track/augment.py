"""What a DFE encoding should ignore, applied to training crops (the denoising-autoencoder input).

The autoencoder sees an augmented crop and reconstructs the clean one, so the encoding
has to keep what survives these changes — texture at a position — and drop the rest:

* photometric: a gain (0.6–1.4), an offset (±20 grey levels), a colour-temperature shift
  (blue and red channel gains in opposite directions), a local shading ramp in a random
  direction with some curvature, sensor noise, defocus or motion blur, JPEG artefacts;
* codec: JPEG at quality 15–60 on a random 8×8 block grid, sometimes after sensor noise — the
  artefacts of a compressed video frame (MPEG-4 and H.264 intra blocks are DCT blocks too);
  used for the matching term (``match_weight``), where the encoding of the true position in
  a compressed region has to stay nearer the reference than its 1–2 px neighbours;
* geometric: a small rotation (±10°) and scale (±8 %) about the crop centre — what a
  head turn or a change of distance does to a patch — but never a shift, because a shift
  is exactly what the tracker must see.

Crops are uint8 BGR with a margin around the encoder's context, so a warp never pulls
in a border; :func:`augment_crop` returns a crop of the same size.
"""

from __future__ import annotations

import numpy as np

from edgekd.track.groundtruth import motion_blur_line
from edgekd.track.preprocess import cv2_module, jpeg_roundtrip


def photometric(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float32 BGR crop 0..255 → the same crop under another light, camera and codec."""
    cv2 = cv2_module()
    h, w = crop.shape[:2]
    f = crop.astype(np.float32)
    temp = rng.normal(0, 0.08)
    channel_gain = np.array([np.exp(temp), 1.0, np.exp(-temp)], np.float32) * np.float32(rng.uniform(0.6, 1.4))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx, yy = xx / (w - 1) - 0.5, yy / (h - 1) - 0.5
    a = rng.uniform(0, 2 * np.pi)
    along = xx * np.cos(a) + yy * np.sin(a)
    shade = 1.0 + rng.uniform(-0.5, 0.5) * along + rng.uniform(-0.4, 0.4) * along * along
    f = f * shade[..., None] * channel_gain + np.float32(rng.uniform(-20, 20))
    kind = rng.random()
    if kind < 0.25:
        f = cv2.GaussianBlur(f, (0, 0), rng.uniform(0.4, 1.5))
    elif kind < 0.4:
        length, b = rng.uniform(1.5, 5.0), rng.uniform(0, np.pi)
        f = motion_blur_line(f, (length * np.cos(b), length * np.sin(b)), cv2)
    if rng.random() < 0.6:
        f = f + rng.normal(0, rng.uniform(1, 8), f.shape).astype(np.float32)
    out = np.clip(np.rint(f), 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        out = jpeg_roundtrip(out, int(rng.integers(25, 90)))
    return out


def codec(crop: np.ndarray, rng: np.random.Generator, quality=(15, 60)) -> np.ndarray:
    """uint8 BGR crop → the same crop through a lossy block codec, its 8×8 grid at a random phase."""
    cv2 = cv2_module()
    h, w = crop.shape[:2]
    img = crop
    if rng.random() < 0.5:
        noisy = crop.astype(np.float32) + rng.normal(0, rng.uniform(1, 4), crop.shape).astype(np.float32)
        img = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    # a frame's block grid falls anywhere relative to a tracked point
    dy, dx = (int(v) for v in rng.integers(0, 8, 2))
    padded = cv2.copyMakeBorder(img, dy, 8 - dy, dx, 8 - dx, cv2.BORDER_REFLECT101)
    return jpeg_roundtrip(padded, int(rng.integers(quality[0], quality[1] + 1)))[dy : dy + h, dx : dx + w]


def geometric(crop: np.ndarray, rng: np.random.Generator, max_deg: float = 10.0, max_scale: float = 0.08) -> np.ndarray:
    """Rotate and scale about the centre (never shift): the patch a turned or nearer head shows."""
    cv2 = cv2_module()
    h, w = crop.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), rng.uniform(-max_deg, max_deg), 1 + rng.uniform(-max_scale, max_scale))
    return cv2.warpAffine(crop, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def augment_crop(crop: np.ndarray, rng: np.random.Generator, photometric_p: float = 0.9, geometric_p: float = 0.0) -> np.ndarray:
    """uint8 BGR crop → augmented uint8 BGR crop of the same size (each family applied with its probability)."""
    out = crop
    if geometric_p and rng.random() < geometric_p:
        out = geometric(out, rng)
    if photometric_p and rng.random() < photometric_p:
        out = photometric(out, rng)
    return out
