"""``.npz`` arrays: ``x_train, y_train, x_test, y_test`` (and optionally ``x_val, y_val``), as Keras
writes them, or ``images, labels`` to be split; optional ``classes``.

Images are uint8 or float in [0, 1], NHWC, NCHW or grey (N, H, W); they are converted to
uint8 RGB NHWC. Read with ``allow_pickle=False``: an object array is refused.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from edgekd.errors import EdgekdError

KEYS = {"train": ("x_train", "y_train"), "val": ("x_val", "y_val"), "test": ("x_test", "y_test"),
        "all": ("images", "labels")}


def to_uint8_rgb(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise EdgekdError(f"{name}: images must be (N, H, W[, C]) or (N, C, H, W), got shape {x.shape}")
    if x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
        x = x.transpose(0, 2, 3, 1)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    if x.shape[-1] != 3:
        raise EdgekdError(f"{name}: images need 1 or 3 channels, got shape {x.shape}")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise EdgekdError(f"{name}: images contain NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            raise EdgekdError(f"{name}: float images must lie in [0, 1], found {lo:.3g}…{hi:.3g}",
                              "store uint8 pixels or scale to [0, 1]")
        return np.ascontiguousarray(np.round(x * 255).astype(np.uint8))
    if np.issubdtype(x.dtype, np.integer) and x.min() >= 0 and x.max() <= 255:
        return np.ascontiguousarray(x.astype(np.uint8))
    raise EdgekdError(f"{name}: images of dtype {x.dtype} are not pixels", "store uint8 or float in [0, 1]")


def read_npz(path: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], tuple[str, ...] | None]:
    try:
        z = np.load(path, allow_pickle=False)
        keys = set(z.files)
    except (OSError, ValueError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise EdgekdError(f"{path} is not a readable .npz ({type(exc).__name__})", "write it with numpy.savez") from None
    splits = {}
    try:
        for split, (xk, yk) in KEYS.items():
            if xk in keys and yk in keys:
                x, y = z[xk], np.asarray(z[yk])
                if y.ndim == 2 and y.shape[1] > 1:  # one-hot
                    y = y.argmax(1)
                y = y.reshape(-1)
                if not np.issubdtype(y.dtype, np.integer):
                    raise EdgekdError(f"{path}: {yk} must hold integer class labels, got {y.dtype}")
                splits[split] = (to_uint8_rgb(x, f"{path.name}:{xk}"), y.astype(np.int64))
        classes = tuple(str(c) for c in z["classes"]) if "classes" in keys else None
    except ValueError as exc:  # object arrays need pickle, which is refused
        raise EdgekdError(f"{path}: {str(exc)[:120]}", "store plain numeric arrays (no Python objects)") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError) as exc:  # a damaged member (bad CRC, truncated)
        raise EdgekdError(f"{path} is damaged ({type(exc).__name__}: {str(exc)[:80]})", "re-create the .npz") from None
    if "train" not in splits and "all" not in splits:
        raise EdgekdError(f"{path} has arrays {sorted(keys)}",
                          "name them x_train, y_train, x_test, y_test (optionally x_val, y_val), or images, labels")
    if "train" in splits and "test" not in splits:
        raise EdgekdError(f"{path} has x_train but no x_test", "add x_test, y_test or store images, labels to be split")
    return splits, classes
