"""In-memory image datasets: uint8 arrays, labels and where they came from.

Every source (digits, CIFAR-10 archive, ImageFolder directory or zip) is decoded once
into ``uint8 (N, H, W, 3)`` RGB arrays and cached, so a training epoch only indexes
memory. Splits are index arrays into these arrays, so an image's index is its identity
everywhere (the IG cache stores the same indices).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from edgekd.errors import EdgekdError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)


@dataclass
class ImageSet:
    """One split of a dataset: images ``uint8 (N, H, W, 3)`` RGB and ``int64`` labels."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise EdgekdError(f"images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}")
        if len(self.images) != len(self.labels):
            raise EdgekdError(f"{len(self.images)} images but {len(self.labels)} labels")
        self.labels = np.asarray(self.labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> "ImageSet":
        indices = np.asarray(indices)
        return ImageSet(self.images[indices], self.labels[indices], self.classes, dict(self.provenance))

    def fingerprint(self) -> str:
        """Content hash of images and labels (identifies the data an IG cache belongs to)."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.images).data)
        h.update(np.ascontiguousarray(self.labels).data)
        return h.hexdigest()


@dataclass
class Dataset:
    """A train split (from which validation is held out) and a test split."""

    name: str
    train: ImageSet
    test: ImageSet
    mean: tuple[float, float, float] = CIFAR10_MEAN
    std: tuple[float, float, float] = CIFAR10_STD

    @property
    def classes(self) -> tuple[str, ...]:
        return self.train.classes

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.train.images.shape[1:3])


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (keep, held_out) with ``fraction`` of every class held out."""
    if not 0.0 < fraction < 1.0:
        raise EdgekdError(f"split fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_held = int(round(len(idx) * fraction))
        if n_held == 0 or n_held == len(idx):
            raise EdgekdError(f"class {c} has {len(idx)} samples: too few to hold out {fraction:.0%} of them")
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def stratified_subset(labels: np.ndarray, n: int, seed: int, pool: np.ndarray | None = None) -> np.ndarray:
    """Exactly ``n`` indices from ``pool`` (default: all) with class proportions kept.

    Per-class counts use largest remainders so that they add up to ``n`` exactly.
    """
    pool = np.arange(len(labels)) if pool is None else np.asarray(pool)
    if n >= len(pool):
        return np.sort(pool)
    classes, counts = np.unique(labels[pool], return_counts=True)
    quota = counts * n / len(pool)
    take = np.floor(quota).astype(int)
    take[np.argsort(-(quota - take), kind="stable")[: n - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(pool[labels[pool] == c])[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen))
