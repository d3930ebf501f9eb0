"""Image datasets as uint8 arrays (memory-mapped where they come from the cache), labels and provenance.

Every source is decoded once into ``uint8 (N, H, W, 3)`` RGB arrays. A split is an
:class:`ImageSet`; ``subset(indices)`` is a *view* (an index array over the same storage),
so a 100k-image set is never copied into RAM to train on part of it: batches are
gathered from the (memory-mapped) array when they are needed. Indices into the training
split are an image's identity everywhere (the IG cache stores the same indices).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from edgekd.errors import EdgekdError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)


class IndexedArray:
    """Rows ``index`` of ``base`` without copying them: supports len, shape, dtype, [int | slice | array]."""

    def __init__(self, base: np.ndarray, index: np.ndarray):
        self.base, self.index = base, np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.base.shape[1:])

    @property
    def dtype(self):
        return self.base.dtype

    @property
    def ndim(self) -> int:
        return self.base.ndim

    def __getitem__(self, key):
        if isinstance(key, tuple):
            return self[key[0]][(slice(None), *key[1:])]
        rows = self.index[key]
        if np.ndim(rows) == 0:
            return np.asarray(self.base[int(rows)])
        # memory-mapped files read fastest in storage order
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), *self.base.shape[1:]), self.base.dtype)
        out[order] = self.base[rows[order]]
        return out

    def __array__(self, dtype=None, copy=None):
        a = self[:]
        return a.astype(dtype) if dtype is not None else a


class ImageSet:
    """One split: images ``uint8 (N, H, W, 3)`` RGB (an array, a memmap or a view) and ``int64`` labels."""

    def __init__(self, images, labels, classes, provenance: dict | None = None):
        labels = np.asarray(labels)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise EdgekdError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise EdgekdError(f"{len(images)} images but {len(labels)} labels")
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise EdgekdError(f"labels must lie in 0…{len(classes) - 1} for {len(classes)} classes, "
                              f"got {labels.min()}…{labels.max()}")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.classes = tuple(str(c) for c in classes)
        self.provenance = dict(provenance or {})

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(int(s) for s in self.images.shape[1:3])

    def subset(self, indices) -> "ImageSet":
        indices = np.asarray(indices, dtype=np.int64)
        if isinstance(self.images, IndexedArray):
            view = IndexedArray(self.images.base, self.images.index[indices])
        else:
            view = IndexedArray(self.images, indices)
        return ImageSet(view, self.labels[indices], self.classes, dict(self.provenance))

    def batches(self, batch_size: int = 500):
        """(images, labels) in order, ``batch_size`` at a time (never the whole split at once)."""
        for lo in range(0, len(self), batch_size):
            yield self.images[lo : lo + batch_size], self.labels[lo : lo + batch_size]

    def fingerprint(self) -> str:
        """Content hash of images and labels, streamed (identifies the data an IG cache belongs to)."""
        h = hashlib.sha256()
        for images, _ in self.batches(2048):
            h.update(np.ascontiguousarray(images).data)
        h.update(np.ascontiguousarray(self.labels).data)
        return h.hexdigest()


@dataclass
class Dataset:
    """A train split, an optional validation split (else one is held out of train) and a test split."""

    name: str
    train: ImageSet
    test: ImageSet
    mean: tuple[float, float, float] = CIFAR10_MEAN
    std: tuple[float, float, float] = CIFAR10_STD
    val: ImageSet | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        return self.train.classes

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.train.image_size


def channel_mean_std(images, batch_size: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units, streamed over the images."""
    s = np.zeros(3)
    s2 = np.zeros(3)
    n = 0
    for lo in range(0, len(images), batch_size):
        x = np.asarray(images[lo : lo + batch_size], dtype=np.float64).reshape(-1, 3) / 255.0
        s += x.sum(0)
        s2 += (x * x).sum(0)
        n += len(x)
    if n == 0:
        raise EdgekdError("cannot compute mean/std of an empty training split")
    mean = s / n
    std = np.sqrt(np.maximum(s2 / n - mean * mean, 1e-12))
    return tuple(float(round(v, 6)) for v in mean), tuple(float(round(v, 6)) for v in std)


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
            raise EdgekdError(f"class {c} has {len(idx)} samples: too few to hold out {fraction:.0%} of them",
                              "add images to that class or change the split fraction")
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
