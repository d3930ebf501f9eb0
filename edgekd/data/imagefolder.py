"""ImageFolder datasets from a directory or a ``.zip``: ``[prefix/]{train,test}/<class>/<image>``.

Class names sort alphabetically into labels (for CIFAR-10 this is the official order).
Images are decoded once with Pillow, resized to ``size`` if needed (centre square crop,
then area resampling) and kept as uint8 arrays in the dataset cache.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from edgekd.data.dataset import ImageSet
from edgekd.errors import EdgekdError, require

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".webp", ".tif", ".tiff"}


def _decode(data: bytes, name: str, size: int | None) -> np.ndarray:
    Image = require("PIL.Image", extra="train", package="pillow")
    try:
        img = Image.open(io.BytesIO(data))
        img = img.convert("RGB")
    except Exception as exc:  # noqa: BLE001 - any decoder failure means a corrupt file
        raise EdgekdError(f"cannot decode image {name} ({exc})", "the file is corrupt: replace or delete it") from None
    if size is not None and img.size != (size, size):
        w, h = img.size
        s = min(w, h)
        img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        img = img.resize((size, size), Image.Resampling.BOX)
    return np.asarray(img, dtype=np.uint8)


class _Source:
    """Uniform listing/reading over a directory or a zip archive."""

    def __init__(self, path: Path):
        self.path = path
        if path.is_dir():
            self.zip = None
            self.names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        elif path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile:
                raise EdgekdError(f"{path} is not a valid zip archive", "re-download it or pass an ImageFolder directory") from None
            self.names = [n for n in self.zip.namelist() if not n.endswith("/")]
        else:
            raise EdgekdError(f"dataset not found: {path}", "pass an ImageFolder directory or .zip, or use --data digits")

    def read(self, name: str) -> bytes:
        if self.zip is None:
            return (self.path / name).read_bytes()
        try:
            return self.zip.read(name)
        except (zipfile.BadZipFile, OSError, KeyError) as exc:
            raise EdgekdError(f"{self.path}: cannot read {name} ({exc})", "the archive is corrupt: re-download it") from None


def _split_layout(names: list[str], split: str) -> dict[str, list[str]]:
    """class → image names under the ``split`` folder (at any depth prefix)."""
    by_class: dict[str, list[str]] = {}
    for n in names:
        parts = PurePosixPath(n).parts
        if PurePosixPath(n).suffix.lower() not in IMAGE_SUFFIXES or any(p.startswith((".", "__MACOSX")) for p in parts):
            continue
        for i in range(len(parts) - 2):
            if parts[i] == split:
                by_class.setdefault(parts[i + 1], []).append(n)
                break
    return by_class


def list_imagefolder(path: Path, split: str | None) -> tuple[_Source, dict[str, list[str]]]:
    src = _Source(path)
    if split is None:
        # A flat ImageFolder: <class>/<image> directly under the root (one level of prefix allowed).
        by_class: dict[str, list[str]] = {}
        for n in src.names:
            parts = PurePosixPath(n).parts
            if len(parts) >= 2 and PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES and not parts[0].startswith("."):
                by_class.setdefault(parts[-2], []).append(n)
        layout = by_class
    else:
        layout = _split_layout(src.names, split)
    if not layout:
        where = f"a '{split}/<class>/<image>' layout" if split else "'<class>/<image>' folders"
        raise EdgekdError(
            f"{path} is not an ImageFolder dataset: found no images in {where}",
            "expected e.g. cifar10/train/airplane/0001.png and cifar10/test/...",
        )
    return src, layout


def load_imagefolder_split(
    path: str | Path, split: str | None, size: int | None = 32, classes: tuple[str, ...] | None = None, progress=None
) -> ImageSet:
    path = Path(path)
    src, layout = list_imagefolder(path, split)
    found = tuple(sorted(layout))
    classes = classes or found
    unknown = set(found) - set(classes)
    if unknown:
        raise EdgekdError(f"{path} [{split}] has classes not in the training split: {sorted(unknown)}")
    items = [(n, classes.index(c)) for c in found for n in sorted(layout[c])]
    images = np.empty((len(items), size or 0, size or 0, 3), np.uint8) if size else None
    decoded, labels = [], np.empty(len(items), np.int64)
    for i, (name, label) in enumerate(items):
        img = _decode(src.read(name), name, size)
        if images is not None:
            images[i] = img
        else:
            decoded.append(img)
        labels[i] = label
        if progress is not None:
            progress(i + 1, len(items))
    if images is None:
        shapes = {d.shape for d in decoded}
        if len(shapes) != 1:
            raise EdgekdError(f"{path}: images have different sizes {sorted(shapes)[:3]}…", "pass an image size to resize them")
        images = np.stack(decoded)
    return ImageSet(images, labels, classes, {"source": str(path), "split": split or "all", "files": len(items)})
