"""Datasets: ``load_dataset("digits" | "cifar10" | PATH)`` → :class:`Dataset`.

PATH may be the official ``cifar-10-python.tar.gz``, or an ImageFolder directory or
``.zip`` with ``train/`` and ``test/`` class folders. Decoded arrays are cached under
``$EDGEKD_CACHE`` (default ``~/.cache/edgekd``), keyed by the source's path, size and
modification time, so the second run starts in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from edgekd.data.dataset import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    Dataset,
    ImageSet,
    stratified_split,
    stratified_subset,
)
from edgekd.errors import EdgekdError
from edgekd.utils.io import atomic_write

__all__ = ["Dataset", "ImageSet", "load_dataset", "stratified_split", "stratified_subset", "cache_dir"]


def cache_dir() -> Path:
    return Path(os.environ.get("EDGEKD_CACHE", Path.home() / ".cache" / "edgekd"))


def _cache_key(path: Path, size: int) -> str:
    st = path.stat()
    return hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{size}|v1".encode()).hexdigest()[:16]


def _save_split(path: Path, s: ImageSet) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, images=s.images, labels=s.labels, classes=np.array(s.classes))

    atomic_write(path, write)


def _load_split(path: Path, provenance: dict) -> ImageSet:
    with np.load(path, allow_pickle=False) as z:
        return ImageSet(z["images"], z["labels"], tuple(str(c) for c in z["classes"]), provenance)


def _progress_decoder(label: str):
    from rich.progress import Progress

    progress = Progress(transient=True)
    task = progress.add_task(label, total=None)

    def update(i: int, n: int) -> None:
        if i == 1:
            progress.start()
            progress.update(task, total=n)
        if i % 500 == 0 or i == n:
            progress.update(task, completed=i)
        if i == n:
            progress.stop()

    return update


def _load_imagefolder(path: Path, size: int, show_progress: bool) -> Dataset:
    from edgekd.data.imagefolder import load_imagefolder_split

    key = _cache_key(path, size)
    cdir = cache_dir() / "datasets" / key
    prov = {"source": str(path.resolve()), "format": "imagefolder", "cache": str(cdir)}
    if (cdir / "train.npz").exists() and (cdir / "test.npz").exists():
        train = _load_split(cdir / "train.npz", {**prov, "split": "train"})
        test = _load_split(cdir / "test.npz", {**prov, "split": "test"})
    else:
        bar = (lambda s: _progress_decoder(f"decoding {path.name} [{s}]")) if show_progress else (lambda s: None)
        train = load_imagefolder_split(path, "train", size, progress=bar("train"))
        test = load_imagefolder_split(path, "test", size, classes=train.classes, progress=bar("test"))
        _save_split(cdir / "train.npz", train)
        _save_split(cdir / "test.npz", test)
        train.provenance, test.provenance = {**prov, "split": "train"}, {**prov, "split": "test"}
    if train.classes == CIFAR10_CLASSES:
        mean, std = CIFAR10_MEAN, CIFAR10_STD
    else:
        x = train.images.reshape(-1, 3).astype(np.float64) / 255
        mean, std = tuple(x.mean(0).tolist()), tuple(x.std(0).tolist())
    name = "cifar10" if train.classes == CIFAR10_CLASSES else path.stem
    return Dataset(name, train, test, mean, std)


def load_dataset(spec: str | os.PathLike = "digits", image_size: int = 32, show_progress: bool = True) -> Dataset:
    """Load a dataset by name or path (see module docstring)."""
    spec_s = str(spec)
    if spec_s == "digits":
        from edgekd.data.digits import load_digits

        return load_digits()
    if spec_s == "cifar10":
        from edgekd.data.cifar10 import download_cifar10, load_cifar10_archive

        return load_cifar10_archive(download_cifar10(cache_dir() / "cifar10"))
    path = Path(spec_s).expanduser()
    if not path.exists():
        raise EdgekdError(
            f"dataset not found: {path}",
            "use --data digits, --data cifar10 (downloads), a cifar-10-python.tar.gz, or an ImageFolder dir/.zip",
        )
    if path.name.endswith((".tar.gz", ".tgz")):
        from edgekd.data.cifar10 import load_cifar10_archive

        return load_cifar10_archive(path)
    return _load_imagefolder(path, image_size, show_progress)
