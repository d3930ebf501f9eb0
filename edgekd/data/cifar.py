"""CIFAR-10 and CIFAR-100: the official python archives, downloaded with an md5 check or given as a local path.

The archives hold pickled batches. We never run a general unpickler on files: the
archive's md5 must match the official one, and the batches are read with an unpickler
that only accepts the numpy array types those batches contain.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekd.data.dataset import CIFAR10_CLASSES
from edgekd.errors import EdgekdError
from edgekd.utils.io import md5_file


@dataclass(frozen=True)
class CifarArchive:
    name: str
    url: str
    md5: str
    filename: str
    train_members: tuple[str, ...]
    test_member: str
    label_key: bytes
    meta_member: str | None = None  # where the class names are (CIFAR-100)


CIFAR10 = CifarArchive("cifar10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                       "c58f30108f718f92721af3b95e74349a", "cifar-10-python.tar.gz",
                       tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
                       "cifar-10-batches-py/test_batch", b"labels")
CIFAR100 = CifarArchive("cifar100", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                        "eb9058c3a382ffc7106e4002c42a8d85", "cifar-100-python.tar.gz",
                        ("cifar-100-python/train",), "cifar-100-python/test", b"fine_labels",
                        "cifar-100-python/meta")
ARCHIVES = {a.name: a for a in (CIFAR10, CIFAR100)}
# Kept for callers of the 0.1 API.
CIFAR10_MD5 = CIFAR10.md5


class _NumpyOnlyUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def download(archive: CifarArchive, root: str | Path) -> Path:
    """Fetch the official archive into ``root`` (if absent) and verify its md5."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / archive.filename
    if not path.exists():
        tmp = path.with_suffix(".part")
        try:
            urllib.request.urlretrieve(archive.url, tmp)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise EdgekdError(
                f"cannot download {archive.name} from {archive.url} ({exc})",
                f"no internet? download {archive.filename} elsewhere and pass --data /path/to/it, "
                "or pass an ImageFolder directory/zip",
            ) from None
        if md5_file(tmp) != archive.md5:
            tmp.unlink(missing_ok=True)
            raise EdgekdError(f"the downloaded {archive.filename} does not have the official md5", "try again later")
        tmp.rename(path)
    return path


def download_cifar10(root: str | Path) -> Path:
    return download(CIFAR10, root)


def which_archive(path: Path) -> CifarArchive | None:
    """The CIFAR archive this tar.gz is (by its member names), or None for any other tarball."""
    try:
        with tarfile.open(path, "r:*") as tar:
            first = tar.next()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise EdgekdError(f"{path} is not a readable tar archive ({type(exc).__name__})", "re-download it") from None
    top = first.name.split("/")[0] if first is not None else ""
    return {"cifar-10-batches-py": CIFAR10, "cifar-100-python": CIFAR100}.get(top)


def _unpickle(tar: tarfile.TarFile, member: str) -> dict:
    f = tar.extractfile(member)
    if f is None:
        raise EdgekdError(f"the archive lacks {member}", "the archive is incomplete: re-download it")
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001
        raise EdgekdError(f"cannot read {member} from the archive ({type(exc).__name__})", "re-download the archive") from None


def _images(d: dict) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def read_archive(path: str | Path, archive: CifarArchive, check_md5: bool = True):
    """(train images, train labels, test images, test labels, classes) from the official archive."""
    path = Path(path)
    if not path.is_file():
        raise EdgekdError(f"{archive.name} archive not found: {path}")
    if check_md5:
        got = md5_file(path)
        if got != archive.md5:
            raise EdgekdError(f"{path} has md5 {got}, not the official {archive.md5}",
                              f"the file is corrupt or not the official {archive.filename}: re-download it")
    try:
        with tarfile.open(path, "r:gz") as tar:
            train = [_unpickle(tar, m) for m in archive.train_members]
            test = _unpickle(tar, archive.test_member)
            if archive.meta_member:
                meta = _unpickle(tar, archive.meta_member)
                classes = tuple(c.decode() for c in meta[b"fine_label_names"])
            else:
                classes = CIFAR10_CLASSES
    except (tarfile.TarError, OSError, EOFError, KeyError) as exc:
        raise EdgekdError(f"{path} is not a readable {archive.name} archive ({type(exc).__name__})", "re-download it") from None
    x_train = np.concatenate([_images(d) for d in train])
    y_train = np.concatenate([np.asarray(d[archive.label_key], dtype=np.int64) for d in train])
    return x_train, y_train, _images(test), np.asarray(test[archive.label_key], dtype=np.int64), classes
