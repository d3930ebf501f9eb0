"""Integrated-Gradients maps of the teacher, computed once and cached on disk.

Maps are computed on the *un-augmented* training images (the reference code used an
augmented, shuffled loader and looked maps up by the wrong index). Each map is
``Σ_rgb |IG|`` for the true label with a zero baseline in normalised space, stored as
float32 ``(N, H, W)`` in a memory-mapped ``maps.npy`` beside ``indices.npy`` (the
dataset index of each row) and a ``manifest.json`` naming the teacher, the data and the
IG settings. A cache made for another teacher or data set is refused. Work is done in
chunks, each marked in ``done.npy`` only after its maps are flushed, so an interrupted
run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.data.transforms import normalize, to_float
from edgekd.errors import EdgekdError, require
from edgekd.utils.io import read_json, write_json

CACHE_VERSION = 1


def model_fingerprint(model: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass
class IGSettings:
    n_steps: int = 50
    internal_batch_size: int = 64  # without it captum holds batch × n_steps images at once (24 GB OOM seen)
    batch_size: int = 32
    method: str = "gausslegendre"


def integrated_gradients(
    model: nn.Module, x_norm: torch.Tensor, labels: torch.Tensor, settings: IGSettings
) -> torch.Tensor:
    """Σ_rgb |IG(x)| for the given labels, zero baseline in normalised space → (B, H, W)."""
    captum_attr = require("captum.attr", extra="train", package="captum")
    ig = captum_attr.IntegratedGradients(model)
    attr = ig.attribute(
        x_norm,
        baselines=torch.zeros_like(x_norm),
        target=labels,
        n_steps=settings.n_steps,
        method=settings.method,
        internal_batch_size=settings.internal_batch_size,
    )
    return attr.abs().sum(1)


class IGCache:
    """A directory holding maps.npy, indices.npy, done.npy and manifest.json."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)

    @property
    def complete(self) -> bool:
        return (self.dir / "done.npy").exists() and bool(np.load(self.dir / "done.npy").all())

    def manifest(self) -> dict | None:
        p = self.dir / "manifest.json"
        return read_json(p) if p.exists() else None

    def check(self, expected: dict) -> None:
        """Refuse a cache that was computed for other weights, data or settings."""
        got = self.manifest()
        if got is None:
            return
        for key in ("version", "teacher_sha256", "data_sha256", "n_steps", "count", "shape"):
            if got.get(key) != expected.get(key):
                raise EdgekdError(
                    f"IG cache {self.dir} was made for a different {key.replace('_sha256', '')} "
                    f"({str(got.get(key))[:16]} ≠ {str(expected.get(key))[:16]})",
                    "delete that directory or point --ig-cache elsewhere to recompute",
                )

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """(indices, maps) with maps memory-mapped read-only."""
        if not self.complete:
            raise EdgekdError(f"IG cache {self.dir} is incomplete", "run the same command again to finish computing it")
        return np.load(self.dir / "indices.npy"), np.load(self.dir / "maps.npy", mmap_mode="r")


def precompute_ig(
    teacher: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    cache_dir: str | Path,
    mean,
    std,
    settings: IGSettings = IGSettings(),
    device: str = "cpu",
    show_progress: bool = True,
) -> IGCache:
    """Compute (or finish computing) the IG maps of ``images[indices]`` into ``cache_dir``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    indices = np.asarray(indices, dtype=np.int64)
    sel_images, sel_labels = images[indices], labels[indices]
    n, h, w = len(indices), images.shape[1], images.shape[2]
    data_hash = hashlib.sha256(np.ascontiguousarray(sel_images).data)
    data_hash.update(np.ascontiguousarray(sel_labels).data)
    data_hash.update(indices.tobytes())
    expected = {
        "version": CACHE_VERSION,
        "teacher_sha256": model_fingerprint(teacher),
        "data_sha256": data_hash.hexdigest(),
        "n_steps": settings.n_steps,
        "method": settings.method,
        "baseline": "zeros (normalised space)",
        "target": "true label",
        "reduction": "sum over RGB of |IG|",
        "count": int(n),
        "shape": [int(n), int(h), int(w)],
        "chunk": int(settings.batch_size),
        "normalisation": {"mean": list(mean), "std": list(std)},
    }
    cache = IGCache(cache_dir)
    cache.check(expected)
    cache.dir.mkdir(parents=True, exist_ok=True)
    n_chunks = (n + settings.batch_size - 1) // settings.batch_size
    if cache.manifest() is None:
        np.save(cache.dir / "indices.npy", indices)
        np.lib.format.open_memmap(cache.dir / "maps.npy", mode="w+", dtype=np.float32, shape=(n, h, w)).flush()
        np.save(cache.dir / "done.npy", np.zeros(n_chunks, dtype=bool))
        write_json(cache.dir / "manifest.json", {**expected, "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    maps = np.load(cache.dir / "maps.npy", mmap_mode="r+")
    done = np.load(cache.dir / "done.npy", mmap_mode="r+")
    todo = np.flatnonzero(~done)
    if len(todo) == 0:
        return cache
    teacher = teacher.to(device).eval()
    started = time.perf_counter()
    progress = Progress(
        TextColumn("IG maps"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
        disable=not show_progress,
    )
    with progress:
        remaining = sum(min(n, (c + 1) * settings.batch_size) - c * settings.batch_size for c in todo)
        task = progress.add_task("ig", total=n, completed=n - remaining, rate="")
        for k, c in enumerate(todo):
            lo, hi = c * settings.batch_size, min(n, (c + 1) * settings.batch_size)
            x = normalize(to_float(torch.from_numpy(sel_images[lo:hi])), mean, std).to(device)
            y = torch.from_numpy(sel_labels[lo:hi]).to(device)
            maps[lo:hi] = integrated_gradients(teacher, x, y, settings).detach().cpu().numpy()
            maps.flush()
            done[c] = True
            done.flush()
            rate = (k + 1) * settings.batch_size / (time.perf_counter() - started)
            progress.update(task, advance=hi - lo, rate=f"{rate:.1f} img/s")
    meta = cache.manifest()
    meta["seconds_last_run"] = round(time.perf_counter() - started, 2)
    meta["images_per_second"] = round(remaining / meta["seconds_last_run"], 3)
    write_json(cache.dir / "manifest.json", meta)
    return cache
