"""Deterministic image corruptions, CIFAR-10-C style, generated from the images (no download).

``corrupt(images, name, seed)`` returns a lazy view: it has a length and is sliced like the
uint8 ``(N, H, W, 3)`` array it wraps, and only the rows asked for are corrupted, so a 10k-image
split is never held twice in memory. Every image's corruption depends only on ``seed`` and the
image's index, never on how the rows are batched: the same call always gives the same pixels.

Severities follow Hendrycks & Dietterich (ICLR 2019, CIFAR-10-C) at level 3 of 5, with blur
scaled to the image side (their σ is for 32-pixel images). JPEG at three qualities because
JPEG is what a device's camera pipeline and image uploads actually apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgekd.errors import EdgekdError

SEVERITY_SOURCE = "Hendrycks & Dietterich 2019 (CIFAR-10-C), severity 3 of 5"


def _jpeg(quality: int) -> Callable:
    def apply(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        import cv2

        # OpenCV encodes BGR: swap so the codec's chroma planes are the real chroma
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise EdgekdError("this OpenCV build cannot encode JPEG", "install opencv-python-headless from PyPI")
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]

    return apply


def _gaussian_noise(sigma: float) -> Callable:
    def apply(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = image / 255.0 + rng.normal(0.0, sigma, image.shape)
        return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)

    return apply


def _gaussian_blur(sigma_at_32px: float) -> Callable:
    def apply(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        import cv2

        sigma = sigma_at_32px * min(image.shape[:2]) / 32.0
        return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)

    return apply


def _brightness(shift: float) -> Callable:
    def apply(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        import cv2

        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
        hsv[..., 2] = np.clip(hsv[..., 2] + shift * 255.0, 0, 255)
        return cv2.cvtColor(np.rint(hsv).astype(np.uint8), cv2.COLOR_HSV2RGB_FULL)

    return apply


def _contrast(factor: float) -> Callable:
    def apply(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = image.astype(np.float32)
        mean = x.mean()
        return np.clip(np.rint((x - mean) * factor + mean), 0, 255).astype(np.uint8)

    return apply


@dataclass(frozen=True)
class Corruption:
    name: str
    description: str
    apply: Callable  # (uint8 HWC RGB image, its own generator) -> uint8 HWC RGB image


CORRUPTIONS = {c.name: c for c in (
    Corruption("jpeg90", "JPEG quality 90", _jpeg(90)),
    Corruption("jpeg75", "JPEG quality 75", _jpeg(75)),
    Corruption("jpeg50", "JPEG quality 50", _jpeg(50)),
    Corruption("gaussian_noise", "Gaussian noise, σ = 0.08 of the pixel range", _gaussian_noise(0.08)),
    Corruption("gaussian_blur", "Gaussian blur, σ = 0.7 px per 32 px of image side", _gaussian_blur(0.7)),
    Corruption("brightness", "brightness +0.3 (HSV value)", _brightness(0.3)),
    Corruption("contrast", "contrast × 0.4 around the image mean", _contrast(0.4)),
)}


def check_corruptions(names) -> tuple[str, ...]:
    names = tuple(names)
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown:
        raise EdgekdError(f"unknown corruption(s): {', '.join(unknown)}", f"use some of: {', '.join(CORRUPTIONS)}")
    return names


class CorruptedImages:
    """``images`` under one corruption, computed row by row when sliced (uint8 NHWC, like ``images``)."""

    def __init__(self, images, name: str, seed: int = 0):
        check_corruptions([name])
        self.images, self.corruption, self.seed = images, CORRUPTIONS[name], int(seed)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape)

    @property
    def dtype(self):
        return np.dtype(np.uint8)

    def _one(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, index])  # the image's own stream: batching cannot change it
        return self.corruption.apply(np.asarray(self.images[index]), rng)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._one(int(key) % len(self))
        rows = np.arange(len(self))[key]
        out = np.empty((len(rows), *self.shape[1:]), np.uint8)
        for i, index in enumerate(rows):
            out[i] = self._one(int(index))
        return out


def evenly_spaced(n_total: int, n: int) -> np.ndarray:
    """Indices of ``n`` images spread evenly over a split of ``n_total`` (all of them when ``n ≥ n_total``): the
    subset every robustness score uses, so scores of different models pair image by image."""
    return np.unique(np.linspace(0, n_total - 1, min(n, n_total)).round().astype(np.int64))


def corrupt(images, name: str, seed: int = 0) -> CorruptedImages:
    """A lazy, deterministic view of ``images`` (uint8 ``(N, H, W, 3)``) under corruption ``name``."""
    return CorruptedImages(images, name, seed)
