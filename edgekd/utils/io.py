"""Atomic file writes, preallocated memory maps, hashing, JSON and run-folder locks.

Long jobs write checkpoints and caches through these so that an interruption leaves
either the old file or the new one, never half of one, and a full disk is one clear
line naming the folder instead of a ``Bus error`` or a traceback.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from edgekd.errors import EdgekdError


def _disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    text = str(exc).lower()
    return "no space left" in text or "disk quota" in text or "file too large" in text


def disk_full_error(path: str | os.PathLike, need_bytes: int | None = None) -> EdgekdError:
    folder = Path(path).parent if not Path(path).is_dir() else Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
        free_s = f"{free / 2**20:.0f} MiB free"
    except OSError:
        free_s = "free space unknown"
    need = f", {need_bytes / 2**20:.0f} MiB needed" if need_bytes else ""
    return EdgekdError(f"no space left on the disk holding {folder} ({free_s}{need}) while writing {Path(path).name}",
                       "free some space or use another --out; nothing half-written was kept")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        if _disk_full(exc):
            raise disk_full_error(path) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    def _write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    return atomic_write(path, _write)


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save`` into memory, then one atomic plain write: a full disk is then an OSError we recognise,
    not one of torch's stream errors ("iostream error", "unexpected pos …")."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def preallocated_memmap(path: str | os.PathLike, dtype, shape: tuple[int, ...]):
    """A writable ``.npy`` memmap whose blocks are reserved on disk up front.

    A memmap over a sparse file dies with SIGBUS ("Bus error") when the disk fills during a
    write; reserving the blocks first turns that into a clear error before any work is done.
    """
    import numpy as np

    path = Path(path)
    itemsize = np.dtype(dtype).itemsize
    need = int(np.prod(shape)) * itemsize + 4096
    try:
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        fd = os.open(path, os.O_RDWR)
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
        finally:
            os.close(fd)
    except OSError as exc:
        path.unlink(missing_ok=True)
        if _disk_full(exc):
            raise disk_full_error(path, need) from None
        raise
    return arr


def _json_default(obj: Any):
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, default=_json_default, allow_nan=True) + "\n"
    return atomic_write_bytes(path, text.encode())


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)


def read_json_checked(path: str | os.PathLike, what: str, hint: str) -> Any:
    """JSON that must parse; a damaged file is one line naming it."""
    try:
        return read_json(path)
    except FileNotFoundError:
        raise EdgekdError(f"{what} is missing: {path}", hint) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise EdgekdError(f"{what} is damaged: {path} ({type(exc).__name__})", hint) from None


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def md5_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextmanager
def file_lock(path: str | os.PathLike, wait: bool = True, what: str | None = None):
    """An exclusive advisory lock (``flock``). With ``wait=False`` a held lock is a clear error."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise EdgekdError(f"{what or path.parent} is in use by {holder}",
                              "wait for it to finish, or use another --out") from None
        try:
            f.seek(0)
            f.truncate()
            f.write(f"edgekd pid {os.getpid()}")
            f.flush()
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
