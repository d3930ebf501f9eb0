"""Image files: ImageFolder directories, ``.zip`` and ``.tar(.gz)`` archives, and CSV lists.

Layouts (class names sort alphabetically into labels; for CIFAR-10 that is the official order):

- ``[prefix/]train/<class>/<image>`` with ``test/`` and/or ``val/`` (``valid/``,
  ``validation/``) beside it;
- flat ``[prefix/]<class>/<image>``: split stratified and seeded into train and test
  (the validation split is held out of train later, like for every source);
- a CSV of ``path,label[,split]`` (paths relative to the CSV; label a class name or an
  integer; split train/val/test, or absent to split like a flat folder).

Images are decoded once with Pillow and resized to ``size`` if needed (centre square crop,
then area resampling).
"""

from __future__ import annotations

import csv
import io
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from edgekd.errors import EdgekdError, require

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".webp", ".tif", ".tiff"}
SPLIT_NAMES = {"train": "train", "test": "test", "val": "val", "valid": "val", "validation": "val"}


def decode_image(data: bytes, name: str, size: int | None) -> np.ndarray:
    Image = require("PIL.Image", extra="train", package="pillow")
    try:
        img = Image.open(io.BytesIO(data))
        img = img.convert("RGB")
    except Exception as exc:  # noqa: BLE001 - any decoder failure means a corrupt file
        raise EdgekdError(f"cannot decode image {name} ({type(exc).__name__}: {str(exc)[:80]})",
                          "the file is corrupt: replace or delete it") from None
    return resize_square(np.asarray(img, dtype=np.uint8), size)


def resize_square(img: np.ndarray, size: int | None) -> np.ndarray:
    """Centre square crop and area resize to ``size`` (no change when it already fits)."""
    if size is None or img.shape[:2] == (size, size):
        return img
    Image = require("PIL.Image", extra="train", package="pillow")
    h, w = img.shape[:2]
    s = min(w, h)
    top, left = (h - s) // 2, (w - s) // 2
    pil = Image.fromarray(img[top : top + s, left : left + s])
    return np.asarray(pil.resize((size, size), Image.Resampling.BOX), dtype=np.uint8)


def image_shape(data: bytes, name: str) -> tuple[int, int]:
    Image = require("PIL.Image", extra="train", package="pillow")
    try:
        w, h = Image.open(io.BytesIO(data)).size
    except Exception as exc:  # noqa: BLE001
        raise EdgekdError(f"cannot read image {name} ({type(exc).__name__})", "the file is corrupt: replace or delete it") from None
    return h, w


class FileSource:
    """Uniform listing/reading over a directory, a zip archive or an extracted tar archive."""

    def __init__(self, path: Path, workdir: Path | None = None):
        self.path = path
        self.zip = None
        self.root = path
        if path.is_dir():
            self.names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        elif path.name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
            if workdir is None:
                raise EdgekdError("a tar archive needs a working folder to be unpacked into")
            try:
                with tarfile.open(path) as tar:
                    tar.extractall(workdir, filter="data")  # refuses links and paths outside workdir
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise EdgekdError(f"{path} is not a readable tar archive ({type(exc).__name__}: {str(exc)[:100]})",
                                  "re-download it or pass the folder itself") from None
            self.root = workdir
            self.names = sorted(p.relative_to(workdir).as_posix() for p in workdir.rglob("*") if p.is_file())
        elif path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError):
                raise EdgekdError(f"{path} is not a valid zip archive", "re-download it or pass an ImageFolder directory") from None
            self.names = [n for n in self.zip.namelist() if not n.endswith("/")]
        else:
            raise EdgekdError(f"dataset not found: {path}", "pass an ImageFolder directory, .zip or .tar.gz, or --data digits")

    def read(self, name: str) -> bytes:
        if self.zip is None:
            return (self.root / name).read_bytes()
        try:
            return self.zip.read(name)
        except (zipfile.BadZipFile, zlib.error, OSError, KeyError, EOFError, ValueError) as exc:
            raise EdgekdError(f"{self.path}: cannot read {name} ({type(exc).__name__})",
                              "the archive is corrupt: re-download it") from None


def _is_image(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return (PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES
            and not any(p.startswith((".", "__MACOSX")) for p in parts))


def find_layout(names: list[str]) -> dict[str, dict[str, list[str]]]:
    """``{split: {class: [image names]}}``; a flat layout is returned as the single split ``"all"``."""
    images = [n for n in names if _is_image(n)]
    by_split: dict[str, dict[str, list[str]]] = {}
    for n in images:
        parts = PurePosixPath(n).parts
        for i in range(len(parts) - 2):
            if parts[i].lower() in SPLIT_NAMES:
                split = SPLIT_NAMES[parts[i].lower()]
                by_split.setdefault(split, {}).setdefault(parts[i + 1], []).append(n)
                break
    if "train" in by_split:
        return by_split
    flat: dict[str, list[str]] = {}
    for n in images:
        parts = PurePosixPath(n).parts
        if len(parts) >= 2:
            flat.setdefault(parts[-2], []).append(n)
    if len(flat) >= 2:
        return {"all": flat}
    raise EdgekdError(
        "found no ImageFolder layout: expected train/<class>/<image> (with test/ or val/ beside it) "
        f"or at least two <class>/<image> folders ({len(images)} images found)",
        "e.g. mydata/train/cat/001.jpg, mydata/val/cat/101.jpg — or mydata/cat/001.jpg, mydata/dog/002.jpg")


def read_csv_list(path: Path) -> tuple[list[tuple[str, str, str | None]], Path]:
    """Rows (file, label, split or None) of a ``path,label[,split]`` CSV, with or without a header."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EdgekdError(f"cannot read {path} as CSV ({type(exc).__name__})", "write it as path,label[,split]") from None
    if rows and rows[0][0].strip().lower() in ("path", "file", "filename", "image"):
        rows = rows[1:]
    out = []
    for i, r in enumerate(rows, 1):
        if len(r) < 2:
            raise EdgekdError(f"{path}: row {i} has {len(r)} column(s)", "each row is path,label[,split]")
        split = r[2].strip().lower() if len(r) > 2 and r[2].strip() else None
        if split is not None and split not in SPLIT_NAMES:
            raise EdgekdError(f"{path}: row {i} names split {r[2]!r}", "use train, val or test")
        out.append((r[0].strip(), r[1].strip(), SPLIT_NAMES.get(split) if split else None))
    if not out:
        raise EdgekdError(f"{path} lists no images", "each row is path,label[,split]")
    return out, path.parent


def class_names(labels: list[str]) -> tuple[str, ...]:
    """Class names in label order: integers sort numerically, names alphabetically."""
    uniq = sorted(set(labels))
    if all(u.lstrip("-").isdigit() for u in uniq):
        return tuple(str(i) for i in range(max(int(u) for u in uniq) + 1))
    return tuple(uniq)
