"""CIFAR-10: the official python archive (downloaded with an md5 check, or a local copy),
or an ImageFolder directory / zip of PNGs such as ``cifar10-png.zip``.

The official archive holds pickled batches. We never run a general unpickler on files:
the archive's md5 must match the official one, and the batches are read with an
unpickler that only accepts the numpy array types those batches contain.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

from edgekd.data.dataset import CIFAR10_CLASSES, Dataset, ImageSet
from edgekd.errors import EdgekdError
from edgekd.utils.io import md5_file

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
_TRAIN_BATCHES = [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
_TEST_BATCH = "cifar-10-batches-py/test_batch"


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


def download_cifar10(root: str | Path) -> Path:
    """Fetch the official archive into ``root`` (if absent) and verify its md5."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "cifar-10-python.tar.gz"
    if not archive.exists():
        tmp = archive.with_suffix(".part")
        try:
            urllib.request.urlretrieve(CIFAR10_URL, tmp)
        except OSError as exc:
            raise EdgekdError(
                f"cannot download CIFAR-10 from {CIFAR10_URL} ({exc})",
                "no internet? download cifar-10-python.tar.gz elsewhere and pass --data /path/to/it, "
                "or pass an ImageFolder directory/zip",
            ) from None
        tmp.rename(archive)
    return archive


def _read_batch(tar: tarfile.TarFile, member: str) -> tuple[np.ndarray, np.ndarray]:
    f = tar.extractfile(member)
    if f is None:
        raise EdgekdError(f"CIFAR-10 archive lacks {member}", "the archive is incomplete: re-download it")
    try:
        d = _NumpyOnlyUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001
        raise EdgekdError(f"cannot read {member} from the CIFAR-10 archive ({exc})", "re-download the archive") from None
    images = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(d[b"labels"], dtype=np.int64)


def load_cifar10_archive(archive: str | Path, check_md5: bool = True) -> Dataset:
    archive = Path(archive)
    if not archive.is_file():
        raise EdgekdError(f"CIFAR-10 archive not found: {archive}")
    if check_md5:
        got = md5_file(archive)
        if got != CIFAR10_MD5:
            raise EdgekdError(
                f"{archive} has md5 {got}, not the official {CIFAR10_MD5}",
                "the file is corrupt or not the official cifar-10-python.tar.gz: re-download it",
            )
    try:
        with tarfile.open(archive, "r:gz") as tar:
            parts = [_read_batch(tar, m) for m in _TRAIN_BATCHES]
            test_x, test_y = _read_batch(tar, _TEST_BATCH)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise EdgekdError(f"{archive} is not a readable tar.gz ({exc})", "re-download it") from None
    prov = {"source": str(archive), "md5": CIFAR10_MD5, "origin": CIFAR10_URL}
    return Dataset(
        name="cifar10",
        train=ImageSet(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), CIFAR10_CLASSES, {**prov, "split": "train"}),
        test=ImageSet(test_x, test_y, CIFAR10_CLASSES, {**prov, "split": "test"}),
    )
