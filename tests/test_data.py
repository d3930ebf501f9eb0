import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest

from edgekd.data import load_dataset, stratified_split, stratified_subset
from edgekd.data.cifar import CIFAR10, CIFAR100, _NumpyOnlyUnpickler, read_archive
from edgekd.data.dataset import IndexedArray
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
    with pytest.raises(EdgekdError, match="no ImageFolder layout"):
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
        read_archive(fake, CIFAR10)

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


def _write_images(root, layout, size=(20, 24), seed=0):
    """Real PNGs (random pixels) in ``layout``: {relative folder: count}."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for folder, n in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / folder / f"{i}.png")


def test_every_layout_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path / "cache"))
    # train/ + val/ (no test/): val is the validation split, test is held out of train
    _write_images(tmp_path / "tv", {f"{s}/{c}": n for s, n in (("train", 10), ("val", 3)) for c in ("cat", "dog")})
    d = load_dataset(tmp_path / "tv", show_progress=False)
    assert d.val is not None and len(d.val) == 6 and len(d.train) + len(d.test) == 20
    assert "no test/ folder" in d.train.provenance["test_split"]
    assert isinstance(d.train.images, np.memmap) and d.image_size == (20, 24)
    # flat <class>/ folders, resized
    _write_images(tmp_path / "flat", {c: 10 for c in ("a", "b", "c")})
    f = load_dataset(tmp_path / "flat", image_size=16, show_progress=False)
    assert f.classes == ("a", "b", "c") and f.image_size == (16, 16) and len(f.train) == 24 and len(f.test) == 6
    # the same images as a tarball and a CSV
    import tarfile

    with tarfile.open(tmp_path / "flat.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "flat", arcname="flat")
    t = load_dataset(tmp_path / "flat.tar.gz", image_size=16, show_progress=False)
    assert t.train.fingerprint() == f.train.fingerprint()
    rows = ["path,label"] + [f"flat/{c}/{i}.png,{c}" for c in ("a", "b", "c") for i in range(10)]
    (tmp_path / "list.csv").write_text("\n".join(rows))
    c = load_dataset(tmp_path / "list.csv", image_size=16, show_progress=False)
    assert c.classes == ("a", "b", "c") and c.train.fingerprint() == f.train.fingerprint()
    # .npz arrays, NCHW float in [0, 1] and Keras-style names
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "arrays.npz", x_train=rng.random((40, 3, 8, 8)), y_train=np.arange(40) % 4,
             x_test=rng.random((8, 3, 8, 8)), y_test=np.arange(8) % 4)
    n = load_dataset(tmp_path / "arrays.npz", show_progress=False)
    assert n.train.images.shape == (40, 8, 8, 3) and n.num_classes == 4 and n.test.images.dtype == np.uint8
    # mixed sizes need --image-size
    _write_images(tmp_path / "mixed" / "x", {"": 10}, size=(10, 10))
    _write_images(tmp_path / "mixed" / "y", {"": 10}, size=(12, 12))
    with pytest.raises(EdgekdError, match="different sizes.*--image-size"):
        load_dataset(tmp_path / "mixed", show_progress=False)


def test_bad_csv_and_npz_are_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path / "cache"))
    (tmp_path / "a.csv").write_text("only_one_column\n")
    with pytest.raises(EdgekdError, match="row 1 has 1 column"):
        load_dataset(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("missing.png,cat,train\nmissing2.png,dog,test\n")
    with pytest.raises(EdgekdError, match="cannot read missing"):
        load_dataset(tmp_path / "b.csv", show_progress=False)
    np.savez(tmp_path / "c.npz", foo=np.zeros(3))
    with pytest.raises(EdgekdError, match="name them x_train"):
        load_dataset(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", images=np.full((10, 4, 4, 3), 2.0), labels=np.zeros(10, int))
    with pytest.raises(EdgekdError, match=r"must lie in \[0, 1\]"):
        load_dataset(tmp_path / "d.npz")


def test_cifar100_archive_is_read(tmp_path, monkeypatch):
    """A small archive in the official CIFAR-100 layout (the md5 check is the caller's; off here)."""
    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)

    def batch(n):
        return pickle.dumps({b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8),
                             b"fine_labels": list(range(n))})

    meta = pickle.dumps({b"fine_label_names": [f"c{i}".encode() for i in range(100)]})
    path = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (("train", batch(100)), ("test", batch(100)), ("meta", meta)):
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    x, y, xt, yt, classes = read_archive(path, CIFAR100, check_md5=False)
    assert x.shape == (100, 32, 32, 3) and len(classes) == 100 and classes[5] == "c5" and y[7] == 7
    with pytest.raises(EdgekdError, match="md5"):
        load_dataset(path)  # a local path is checked against the official md5


def test_subsets_are_views_not_copies():
    base = np.arange(10 * 2 * 2 * 3, dtype=np.uint8).reshape(10, 2, 2, 3)
    from edgekd.data import ImageSet

    s = ImageSet(base, np.arange(10) % 2, ("a", "b"))
    sub = s.subset([7, 2, 5]).subset([2, 0])
    assert isinstance(sub.images, IndexedArray) and sub.images.base is base
    assert np.array_equal(sub.images[:], base[[5, 7]]) and sub.labels.tolist() == [1, 1]
    assert np.array_equal(sub.images[1], base[7]) and sub.images.shape == (2, 2, 2, 3)


def test_an_edited_image_invalidates_the_cache(tmp_path, monkeypatch):
    """A folder's own mtime does not change when a file inside it is rewritten; the cache must notice anyway."""
    import os

    from PIL import Image

    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path / "cache"))
    _write_images(tmp_path / "flat", {c: 10 for c in ("a", "b")})
    rows = ["path,label"] + [f"flat/{c}/{i}.png,{c}" for c in ("a", "b") for i in range(10)]
    (tmp_path / "list.csv").write_text("\n".join(rows))
    before = {src: load_dataset(tmp_path / src, show_progress=False) for src in ("flat", "list.csv")}
    victim = tmp_path / "flat" / "a" / "0.png"
    dir_stat = (tmp_path / "flat").stat()
    Image.fromarray(np.full((20, 24, 3), 7, np.uint8)).save(victim)
    os.utime(tmp_path / "flat", ns=(dir_stat.st_atime_ns, dir_stat.st_mtime_ns))
    for src, old in before.items():
        new = load_dataset(tmp_path / src, show_progress=False)
        assert (new.train.fingerprint(), new.test.fingerprint()) != (old.train.fingerprint(), old.test.fingerprint()), src
    victim.write_bytes(b"not a png")
    with pytest.raises(EdgekdError, match="cannot decode image"):
        load_dataset(tmp_path / "flat", show_progress=False)
