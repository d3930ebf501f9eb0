"""Datasets: ``load_dataset(spec, image_size=...)`` → :class:`Dataset`.

``spec`` is ``digits`` (bundled with scikit-learn), ``cifar10`` / ``cifar100`` (official
archives, downloaded with an md5 check), or a path: a ``cifar-10/100-python.tar.gz``; an
ImageFolder directory, ``.zip`` or ``.tar(.gz)`` (``train/`` with ``val/`` and/or ``test/``,
or flat ``<class>/`` folders); a ``.csv`` of ``path,label[,split]``; an ``.npz`` of arrays.

Sources without a test split are split stratified with a fixed seed (the test set never
changes between runs). Everything but digits is decoded once into memory-mapped uint8
arrays under ``$EDGEKD_CACHE`` (default ``~/.cache/edgekd``), keyed by the source's path,
size and modification time (and those of every file a folder or CSV holds) and the image
size, so later runs start in a fraction of a second and never hold the whole set in RAM.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from edgekd.data.cache import DatasetCache, cache_dir
from edgekd.data.dataset import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    Dataset,
    ImageSet,
    channel_mean_std,
    stratified_split,
    stratified_subset,
)
from edgekd.errors import EdgekdError

__all__ = ["Dataset", "ImageSet", "load_dataset", "stratified_split", "stratified_subset", "cache_dir",
           "DATA_TEST_SEED", "TEST_FRACTION"]

DATA_TEST_SEED = 20240601  # the seed of every test split edgekd cuts itself
TEST_FRACTION = 0.2
CACHE_VERSION = "v2"
NAMED = ("digits", "cifar10", "cifar100")


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}|{st.st_mtime_ns}"


def _member_files(path: Path) -> list[Path]:
    """The files a folder or CSV source is made of: editing any of them must invalidate the cache."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    if path.suffix.lower() == ".csv":
        from edgekd.data.imagefolder import read_csv_list

        rows, base = read_csv_list(path)
        return [p if p.is_absolute() else base / p for p in (Path(r[0]) for r in rows)]
    return []


def _source_key(path: Path, image_size: int | None, kind: str) -> str:
    h = hashlib.sha1(f"{path.resolve()}|{_stamp(path)}|{image_size}|{kind}|{CACHE_VERSION}".encode())
    for member in _member_files(path):
        try:
            h.update(f"|{member}|{_stamp(member)}".encode())
        except OSError:  # a missing member is reported when the source is decoded
            h.update(f"|{member}|missing".encode())
    return h.hexdigest()[:16]


def _progress(label: str, total: int, show: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        transient=True, disable=not show or total < 2000)
    return progress, progress.add_task(label, total=total)


def _decode_into(cache: DatasetCache, split: str, items, read, size: int | None, classes, provenance,
                 show_progress: bool) -> None:
    """Decode (name, label) items with ``read(name) -> bytes`` into the cache's memory-mapped split."""
    from edgekd.data.imagefolder import decode_image

    if not items:
        raise EdgekdError(f"the {split} split has no images")
    first = decode_image(read(items[0][0]), items[0][0], size)
    shape = first.shape[:2]
    writer = cache.writer(split, len(items), shape)
    progress, task = _progress(f"decoding {split}", len(items), show_progress)
    with progress:
        for i, (name, label) in enumerate(items):
            img = first if i == 0 else decode_image(read(name), name, size)
            if img.shape[:2] != shape:
                raise EdgekdError(f"images have different sizes ({items[0][0]}: {shape[1]}×{shape[0]}, "
                                  f"{name}: {img.shape[1]}×{img.shape[0]})",
                                  "pass --image-size N to resize them all (centre crop + area resize)")
            writer.images[i] = img
            writer.labels[i] = label
            if i % 256 == 0:
                progress.update(task, completed=i + 1)
    writer.finish(classes, {**provenance, "split": split, "files": len(items), "image_size": list(shape)})


def _split_flat(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return stratified_split(labels, TEST_FRACTION, DATA_TEST_SEED)


def _load_image_files(path: Path, image_size: int | None, show_progress: bool) -> dict[str, ImageSet]:
    from edgekd.data.imagefolder import FileSource, class_names, find_layout, read_csv_list

    is_csv = path.suffix.lower() == ".csv"
    cache = DatasetCache(_source_key(path, image_size, "csv" if is_csv else "imagefolder"))
    found = cache.load()
    if found:
        return found
    extract = cache.final.with_name(cache.final.name + ".extract")
    prov = {"source": str(path.resolve()), "format": "csv" if is_csv else "imagefolder"}
    try:
        with cache:
            if is_csv:
                rows, base = read_csv_list(path)
                classes = class_names([lab for _, lab, _ in rows])
                lookup = {c: i for i, c in enumerate(classes)}
                layout: dict[str, list[tuple[str, int]]] = {}
                for f, lab, split in rows:
                    layout.setdefault(split or "all", []).append((f, lookup[lab]))

                def read(name: str) -> bytes:
                    p = (base / name) if not Path(name).is_absolute() else Path(name)
                    try:
                        return p.read_bytes()
                    except OSError as exc:
                        raise EdgekdError(f"{path}: cannot read {name} ({type(exc).__name__})",
                                          "paths in the CSV are relative to the CSV's folder") from None
            else:
                shutil.rmtree(extract, ignore_errors=True)
                src = FileSource(path, workdir=extract)
                by_split = find_layout(src.names)
                classes = tuple(sorted(by_split.get("train", by_split.get("all", {}))))
                for split, by_class in by_split.items():
                    unknown = set(by_class) - set(classes)
                    if unknown:
                        raise EdgekdError(f"{path}: the {split} split has classes not in train: {sorted(unknown)[:5]}")
                layout = {split: [(n, classes.index(c)) for c in sorted(by_class) for n in sorted(by_class[c])]
                          for split, by_class in by_split.items()}
                read = src.read
            if "all" in layout:
                if set(layout) - {"all"}:
                    raise EdgekdError(f"{path}: some rows name a split and some do not", "give every row a split, or none")
                items = layout.pop("all")
                keep, held = _split_flat(np.array([lab for _, lab in items]))
                layout = {"train": [items[i] for i in keep], "test": [items[i] for i in held]}
                prov["test_split"] = f"stratified {TEST_FRACTION:.0%} of the images, seed {DATA_TEST_SEED}"
            elif "test" not in layout:
                items = layout.pop("train")
                keep, held = _split_flat(np.array([lab for _, lab in items]))
                layout["train"], layout["test"] = [items[i] for i in keep], [items[i] for i in held]
                prov["test_split"] = f"stratified {TEST_FRACTION:.0%} of train/, seed {DATA_TEST_SEED} (no test/ folder)"
            for split in ("train", "val", "test"):
                if split in layout:
                    _decode_into(cache, split, layout[split], read, image_size, classes, prov, show_progress)
            return cache.commit()
    finally:
        shutil.rmtree(extract, ignore_errors=True)


def _load_arrays(path: Path, image_size: int | None) -> dict[str, ImageSet]:
    from edgekd.data.arrays import read_npz

    cache = DatasetCache(_source_key(path, image_size, "npz"))
    found = cache.load()
    if found:
        return found
    splits, classes = read_npz(path)
    if "all" in splits:
        x, y = splits.pop("all")
        keep, held = _split_flat(y)
        splits = {"train": (x[keep], y[keep]), "test": (x[held], y[held])}
    n_classes = 1 + max(int(y.max()) for _, y in splits.values())
    classes = classes or tuple(str(i) for i in range(n_classes))
    with cache:
        for split, (x, y) in splits.items():
            x = _resize_all(x, image_size)
            cache.write(split, ImageSet(x, y, classes, {"source": str(path.resolve()), "format": "npz", "split": split}))
        return cache.commit()


def _resize_all(images: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or images.shape[1:3] == (size, size):
        return images
    from edgekd.data.imagefolder import resize_square

    return np.stack([resize_square(im, size) for im in images])


def _load_cifar(path: Path, archive, image_size: int | None, check_md5: bool = True) -> dict[str, ImageSet]:
    from edgekd.data.cifar import read_archive

    cache = DatasetCache(_source_key(path, image_size, archive.name))
    found = cache.load()
    if found:
        return found
    x_train, y_train, x_test, y_test, classes = read_archive(path, archive, check_md5)
    prov = {"source": str(path.resolve()), "format": archive.name, "md5": archive.md5, "origin": archive.url}
    with cache:
        cache.write("train", ImageSet(_resize_all(x_train, image_size), y_train, classes, {**prov, "split": "train"}))
        cache.write("test", ImageSet(_resize_all(x_test, image_size), y_test, classes, {**prov, "split": "test"}))
        return cache.commit()


def _dataset(name: str, splits: dict[str, ImageSet], mean=None, std=None) -> Dataset:
    train = splits["train"]
    if mean is None or std is None:
        if train.classes == CIFAR10_CLASSES:
            stats = (CIFAR10_MEAN, CIFAR10_STD)  # the paper's normalisation
        else:
            stats = channel_mean_std(train.images)
        mean = stats[0] if mean is None else mean
        std = stats[1] if std is None else std
    for part, s in splits.items():
        if s.image_size != train.image_size:
            raise EdgekdError(f"{name}: the {part} images are {s.image_size}, train images {train.image_size}",
                              "pass --image-size N to resize every split alike")
    return Dataset(name, train, splits["test"], tuple(mean), tuple(std), splits.get("val"))


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip", ".npz", ".csv"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def load_dataset(spec: str | os.PathLike = "digits", image_size: int | None = None, show_progress: bool = True,
                 mean=None, std=None) -> Dataset:
    """Load a dataset by name or path (see module docstring); ``image_size`` resizes every image to N×N."""
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8):
        raise EdgekdError(f"image_size must be an integer ≥ 8, got {image_size!r}")
    spec_s = str(spec)
    if spec_s == "digits":
        from edgekd.data.digits import load_digits

        d = load_digits(image_size or 32)
        if mean is not None or std is not None:
            d.mean, d.std = tuple(mean or d.mean), tuple(std or d.std)
        return d
    if spec_s in ("cifar10", "cifar100"):
        from edgekd.data.cifar import ARCHIVES, download

        archive = ARCHIVES[spec_s]
        return _dataset(spec_s, _load_cifar(download(archive, cache_dir() / spec_s), archive, image_size), mean, std)
    path = Path(spec_s).expanduser()
    if not path.exists():
        raise EdgekdError(
            f"dataset not found: {path}",
            "use --data digits, cifar10 or cifar100 (downloads), or a path: an ImageFolder dir/.zip/.tar.gz, "
            "a .csv of path,label, an .npz, or a cifar-10/100-python.tar.gz")
    lower = path.name.lower()
    if path.is_file() and lower.endswith(".npz"):
        splits = _load_arrays(path, image_size)
    elif path.is_file() and lower.endswith((".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")):
        from edgekd.data.cifar import which_archive

        archive = which_archive(path)
        if archive is not None:
            return _dataset(archive.name, _load_cifar(path, archive, image_size), mean, std)
        splits = _load_image_files(path, image_size, show_progress)
    else:
        splits = _load_image_files(path, image_size, show_progress)
    name = "cifar10" if splits["train"].classes == CIFAR10_CLASSES else _stem(path)
    return _dataset(name, splits, mean, std)
