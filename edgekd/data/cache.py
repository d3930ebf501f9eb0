"""The decoded-dataset cache: one folder per source, one ``images.npy`` per split, memory-mapped.

``$EDGEKD_CACHE/datasets/<key>/<split>/{images.npy, labels.npy, meta.json}``. A cache is
built in a temporary folder and renamed into place when complete, so an interrupted
decode leaves nothing half-written; a cache that does not read back consistently is
rebuilt.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from edgekd.data.dataset import ImageSet
from edgekd.errors import EdgekdError

SPLITS = ("train", "val", "test")


def cache_dir() -> Path:
    return Path(os.environ.get("EDGEKD_CACHE", Path.home() / ".cache" / "edgekd"))


class SplitWriter:
    """Fill a memory-mapped ``images.npy`` row by row (nothing held in RAM but the current image)."""

    def __init__(self, folder: Path, n: int, size: tuple[int, int]):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.images = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8,
                                                shape=(n, size[0], size[1], 3))
        self.labels = np.empty(n, np.int64)

    def finish(self, classes, provenance: dict) -> None:
        self.images.flush()
        del self.images
        np.save(self.folder / "labels.npy", self.labels)
        (self.folder / "meta.json").write_text(json.dumps({"classes": list(classes), "provenance": provenance}))


def write_split(folder: Path, images: np.ndarray, labels: np.ndarray, classes, provenance: dict) -> None:
    w = SplitWriter(folder, len(images), images.shape[1:3])
    for lo in range(0, len(images), 4096):
        w.images[lo : lo + 4096] = images[lo : lo + 4096]
    w.labels[:] = labels
    w.finish(classes, provenance)


def read_split(folder: Path) -> ImageSet:
    meta = json.loads((folder / "meta.json").read_text())
    images = np.load(folder / "images.npy", mmap_mode="r")
    labels = np.load(folder / "labels.npy")
    return ImageSet(images, labels, meta["classes"], meta["provenance"])


class DatasetCache:
    """``with DatasetCache(key) as c`` builds splits into a temporary folder that becomes the cache on success."""

    def __init__(self, key: str):
        self.final = cache_dir() / "datasets" / key
        self.tmp = self.final.with_name(f"{self.final.name}.tmp-{os.getpid()}")

    def load(self) -> dict[str, ImageSet] | None:
        if not self.final.is_dir():
            return None
        try:
            splits = {s: read_split(self.final / s) for s in SPLITS if (self.final / s).is_dir()}
            if "train" not in splits or "test" not in splits:
                raise ValueError("train or test split missing")
            return splits
        except (OSError, ValueError, KeyError, EdgekdError) as exc:
            print(f"note: the dataset cache {self.final} is unreadable ({type(exc).__name__}); rebuilding it")
            shutil.rmtree(self.final, ignore_errors=True)
            return None

    def writer(self, split: str, n: int, size: tuple[int, int]) -> SplitWriter:
        return SplitWriter(self.tmp / split, n, size)

    def write(self, split: str, s: ImageSet) -> None:
        write_split(self.tmp / split, s.images, s.labels, s.classes, s.provenance)

    def commit(self) -> dict[str, ImageSet]:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(self.tmp, self.final)
        except OSError:  # another process finished first: use its copy
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.load()

    def __enter__(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return False
