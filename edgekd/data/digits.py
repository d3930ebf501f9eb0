"""scikit-learn's bundled handwritten digits: the embedded default that needs no download.

1,797 8×8 grey images, upsampled (bilinear) to ``size``×``size`` RGB (32 by default) so every
model and exporter works on them unchanged. The test split (20 %, stratified, fixed seed)
never changes between runs.
"""

from __future__ import annotations

import numpy as np

from edgekd.data.dataset import Dataset, ImageSet, stratified_split
from edgekd.errors import require

DIGITS_TEST_SEED = 20240601


def _upsample(images8: np.ndarray, size: int = 32) -> np.ndarray:
    """8×8 values 0…16 → size×size uint8 RGB by bilinear interpolation (separable)."""
    src = np.linspace(0, 7, size)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, 7)
    w = (src - lo)[None, :]
    rows = images8[:, lo, :] * (1 - w.T)[None] + images8[:, hi, :] * w.T[None]
    out = rows[:, :, lo] * (1 - w)[None] + rows[:, :, hi] * w[None]
    grey = np.clip(out * (255.0 / 16.0) + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def load_digits(size: int = 32) -> Dataset:
    datasets = require("sklearn.datasets", extra="train", package="scikit-learn")
    bunch = datasets.load_digits()
    images = _upsample(bunch.images.astype(np.float64), size)
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = stratified_split(labels, 0.2, DIGITS_TEST_SEED)
    classes = tuple(str(i) for i in range(10))
    prov = {"source": "scikit-learn load_digits (bundled UCI optdigits test set)",
            "upsampled": f"8x8 -> {size}x{size} bilinear, grey -> RGB"}
    mean = tuple(float(images[train_idx].mean() / 255) for _ in range(3))
    std = tuple(float(images[train_idx].std() / 255) for _ in range(3))
    return Dataset(
        name="digits",
        train=ImageSet(images[train_idx], labels[train_idx], classes, {**prov, "split": "train"}),
        test=ImageSet(images[test_idx], labels[test_idx], classes, {**prov, "split": "test"}),
        mean=mean,
        std=std,
    )
