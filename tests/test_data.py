import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest

from edgekd.data import load_dataset, stratified_split, stratified_subset
from edgekd.data.cifar10 import _NumpyOnlyUnpickler, load_cifar10_archive
from edgekd.errors import EdgekdError


def make_cifar_slice(cifar_zip, dest, per_class=6):
    """A small real ImageFolder zip: the first images of every class from the shared CIFAR-10."""
    with zipfile.ZipFile(cifar_zip) as src, zipfile.ZipFile(dest, "w") as out:
        counts = {}
        for name in src.namelist():
            parts = name.split("/")
            if len(parts) != 4 or not name.endswith(".png"):
                continue
            key = (parts[1], parts[2])
            if counts.get(key, 0) < per_class:
                counts[key] = counts.get(key, 0) + 1
                out.writestr(name, src.read(name))
    return dest


def test_digits_default():
    d = load_dataset("digits")
    assert d.train.images.shape[1:] == (32, 32, 3) and d.train.images.dtype == np.uint8
    assert len(d.train) + len(d.test) == 1797 and d.num_classes == 10
    # stratified: every class in both splits in about the same proportion
    tr = np.bincount(d.train.labels) / len(d.train)
    te = np.bincount(d.test.labels) / len(d.test)
    assert np.abs(tr - te).max() < 0.02


def test_imagefolder_zip_from_real_cifar(cifar_zip, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path / "cache"))
    z = make_cifar_slice(cifar_zip, tmp_path / "slice.zip")
    d = load_dataset(z, show_progress=False)
    assert d.name == "cifar10" and d.classes[0] == "airplane"
    assert len(d.train) == 60 and len(d.test) == 60
    assert np.bincount(d.train.labels).tolist() == [6] * 10
    # second load comes from the cache, with identical content
    again = load_dataset(z, show_progress=False)
    assert again.train.fingerprint() == d.train.fingerprint()
    assert list((tmp_path / "cache" / "datasets").iterdir())


def test_zip_that_is_not_an_imagefolder(tmp_path):
    p = tmp_path / "x.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(EdgekdError, match="not an ImageFolder"):
        load_dataset(p)
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(EdgekdError, match="not a valid zip"):
        load_dataset(tmp_path / "bad.zip")
    with pytest.raises(EdgekdError, match="not found"):
        load_dataset(tmp_path / "missing.zip")


def test_corrupt_image_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path / "cache"))
    for split in ("train", "test"):
        (tmp_path / "ds" / split / "a").mkdir(parents=True)
        (tmp_path / "ds" / split / "a" / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(EdgekdError, match="cannot decode image"):
        load_dataset(tmp_path / "ds", show_progress=False)


def test_cifar_archive_checksum_and_safe_unpickling(tmp_path):
    fake = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(fake, "w:gz") as tar:
        data = b"x" * 10
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(EdgekdError, match="md5"):
        load_cifar10_archive(fake)

    class Evil:
        def __reduce__(self):
            return (eval, ("1+1",))

    with pytest.raises(pickle.UnpicklingError):
        _NumpyOnlyUnpickler(io.BytesIO(pickle.dumps({b"data": Evil()})), encoding="bytes").load()
    ok = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]}
    assert _NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(ok)), encoding="bytes").load()[b"labels"] == [1, 2]


def test_stratified_split_and_subset():
    labels = np.repeat(np.arange(5), [100, 50, 80, 40, 30])
    keep, held = stratified_split(labels, 0.1, seed=3)
    assert len(np.intersect1d(keep, held)) == 0 and len(keep) + len(held) == len(labels)
    assert np.bincount(labels[held]).tolist() == [10, 5, 8, 4, 3]
    again, _ = stratified_split(labels, 0.1, seed=3)
    assert np.array_equal(keep, again)
    sub = stratified_subset(labels, 60, seed=0, pool=keep)
    assert len(sub) == 60 and set(sub) <= set(keep)
    with pytest.raises(EdgekdError):
        stratified_split(np.array([0, 0, 1]), 0.5, 0)
