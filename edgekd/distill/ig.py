"""Integrated-Gradients maps of the teacher, computed once, cached on disk and verified on every load.

Maps are computed on the *un-augmented* training images (the reference code used an
augmented, shuffled loader and looked maps up by the wrong index). Each map is
``Σ_rgb |IG|`` for the true label with a zero baseline in normalised space.

Cache layout (``IGCache``): ``maps.npy`` float16 ``(N, H, W)`` holding each map divided by
its own maximum (the overlay min-max normalises every map, so it is scale-free, and
float16 then loses nothing that matters), ``scales.npy`` float32 (that maximum, so
``maps * scales`` is the raw map), ``indices.npy`` (the dataset index of each row),
``done.npy`` (chunks finished), ``digests.npy`` (sha256 of every finished chunk) and a
``manifest.json`` naming the teacher, the data and the IG settings. A cache made for
another teacher or data set is refused; a damaged one (flipped bytes, a truncated file,
NaNs, a broken header) is a one-line error saying how to rebuild it. Work is done in
chunks, each marked done only after its maps are flushed, so an interrupted run resumes
where it stopped, and chunks can be split over ranks (``rank``/``world``).
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
from edgekd.utils.io import file_lock, preallocated_memmap, read_json_checked, write_json

CACHE_VERSION = 2
FILES = ("maps.npy", "scales.npy", "indices.npy", "done.npy", "digests.npy", "manifest.json")


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
    batch_size: int = 32  # images per chunk
    method: str = "gausslegendre"
    amp: str = "off"  # off | bf16: the teacher's forward and backward under bf16 autocast (inputs stay float32)


def _attribute(model: nn.Module, x_norm: torch.Tensor, labels: torch.Tensor, settings: IGSettings,
               convergence_delta: bool = False):
    captum_attr = require("captum.attr", extra="train", package="captum")
    ig = captum_attr.IntegratedGradients(model)
    x_norm = x_norm.contiguous(memory_format=torch.channels_last)
    with torch.autocast(x_norm.device.type, dtype=torch.bfloat16, enabled=settings.amp == "bf16"):
        return ig.attribute(x_norm, baselines=torch.zeros_like(x_norm), target=labels, n_steps=settings.n_steps,
                            method=settings.method, internal_batch_size=settings.internal_batch_size,
                            return_convergence_delta=convergence_delta)


def integrated_gradients(model: nn.Module, x_norm: torch.Tensor, labels: torch.Tensor, settings: IGSettings) -> torch.Tensor:
    """Σ_rgb |IG(x)| for the given labels, zero baseline in normalised space → (B, H, W)."""
    return _attribute(model, x_norm, labels, settings).float().abs().sum(1)


@torch.no_grad()
def _target_gap(model: nn.Module, x_norm: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    rows = torch.arange(len(labels))
    return model(x_norm)[rows, labels].float() - model(torch.zeros_like(x_norm))[rows, labels].float()


def completeness_error(model: nn.Module, x_norm: torch.Tensor, labels: torch.Tensor, settings: IGSettings) -> np.ndarray:
    """Per image |Σ IG − (F(x) − F(baseline))| / |F(x) − F(baseline)| for the target class, in fp32 logits.

    IG's completeness axiom makes this 0 for the exact integral; the gap is the quadrature's error,
    so it says how many steps a teacher needs (Sundararajan et al., 2017)."""
    attr = _attribute(model, x_norm, labels, settings).float()
    gap = _target_gap(model, x_norm, labels)
    total = attr.flatten(1).sum(1)
    return ((total - gap).abs() / gap.abs().clamp_min(1e-6)).cpu().numpy()


def choose_steps(model: nn.Module, x_norm: torch.Tensor, labels: torch.Tensor, tolerance: float = 0.05,
                 candidates: tuple[int, ...] = (4, 8, 16, 32, 50), internal_batch_size: int = 64,
                 amp: str = "off") -> tuple[int, dict[int, float]]:
    """The fewest IG steps whose median completeness error on these (validation) images is within ``tolerance``.

    Returns the choice and the median error of every candidate tried (the most steps if none is within it)."""
    model = model.eval()
    errors = {}
    for n in sorted(candidates):
        settings = IGSettings(n_steps=n, internal_batch_size=internal_batch_size, amp=amp)
        errors[n] = float(np.median(completeness_error(model, x_norm, labels, settings)))
        if errors[n] <= tolerance:
            return n, errors
    return max(candidates), errors


def _rebuild_hint(directory: Path) -> str:
    return f"delete {directory} and run the same command again to recompute it"


def _chunk_digest(maps: np.ndarray, scales: np.ndarray) -> np.ndarray:
    h = hashlib.sha256(np.ascontiguousarray(maps).data)
    h.update(np.ascontiguousarray(scales).data)
    return np.frombuffer(h.digest(), dtype=np.uint8)


class IGCache:
    """A directory holding the files above; ``load()`` verifies before it returns anything."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)

    def manifest(self) -> dict | None:
        p = self.dir / "manifest.json"
        if not p.exists():
            return None
        m = read_json_checked(p, f"the IG cache manifest", _rebuild_hint(self.dir))
        if not isinstance(m, dict):
            raise EdgekdError(f"the IG cache manifest {p} is damaged (not an object)", _rebuild_hint(self.dir))
        return m

    def _open(self, name: str, mode: str = "r"):
        try:
            return np.load(self.dir / name, mmap_mode=mode)
        except FileNotFoundError:
            raise EdgekdError(f"the IG cache {self.dir} lacks {name}", _rebuild_hint(self.dir)) from None
        except Exception as exc:  # noqa: BLE001 - a broken header (numpy parses it) or a truncated file
            raise EdgekdError(f"the IG cache file {self.dir / name} is damaged ({type(exc).__name__})",
                              _rebuild_hint(self.dir)) from None

    @property
    def complete(self) -> bool:
        if not (self.dir / "done.npy").exists():
            return False
        return bool(np.asarray(self._open("done.npy")).all())

    def check(self, expected: dict) -> None:
        """Refuse a cache that was computed for other weights, data or settings."""
        got = self.manifest()
        if got is None:
            return
        for key in ("version", "teacher_sha256", "data_sha256", "n_steps", "amp", "count", "shape", "chunk"):
            if got.get(key) != expected.get(key):
                raise EdgekdError(
                    f"IG cache {self.dir} was made for a different {key.replace('_sha256', '')} "
                    f"({str(got.get(key))[:16]} ≠ {str(expected.get(key))[:16]})",
                    f"delete that directory or use another --out to recompute")

    def _verified_arrays(self):
        """The cache's arrays after the cheap whole-file checks (shapes, dtypes, sizes against the manifest)."""
        m = self.manifest()
        if m is None:
            raise EdgekdError(f"the IG cache {self.dir} has no manifest.json", _rebuild_hint(self.dir))
        maps, scales, indices, done, digests = (self._open(f) for f in FILES[:5])
        n, chunk = m.get("count"), m.get("chunk")
        n_chunks = -(-n // chunk) if isinstance(n, int) and isinstance(chunk, int) and chunk > 0 else None
        problems = []
        if list(maps.shape) != m.get("shape") or maps.dtype != np.float16:
            problems.append(f"maps.npy is {maps.dtype} {list(maps.shape)}, manifest says float16 {m.get('shape')}")
        if scales.shape != (n,) or indices.shape != (n,):
            problems.append("scales.npy / indices.npy do not hold one entry per map")
        if n_chunks is None or done.shape != (n_chunks,) or digests.shape != (n_chunks, 32):
            problems.append("done.npy / digests.npy do not hold one entry per chunk")
        if not problems and hashlib.sha256(np.ascontiguousarray(indices).data).hexdigest() != m.get("indices_sha256"):
            problems.append("indices.npy does not match the manifest")
        if problems:
            raise EdgekdError(f"the IG cache {self.dir} is damaged: {problems[0]}", _rebuild_hint(self.dir))
        return m, maps, scales, indices, done, digests

    def verify(self) -> None:
        """Every finished chunk's sha256 and finiteness; a mismatch names the first bad chunk."""
        m, maps, scales, _, done, digests = self._verified_arrays()
        chunk = m["chunk"]
        for c in np.flatnonzero(np.asarray(done)):
            lo, hi = c * chunk, min(m["count"], (c + 1) * chunk)
            block, sc = np.asarray(maps[lo:hi]), np.asarray(scales[lo:hi])
            if not np.array_equal(_chunk_digest(block, sc), digests[c]):
                raise EdgekdError(f"the IG cache {self.dir} is damaged: maps {lo}…{hi - 1} do not match their checksum",
                                  _rebuild_hint(self.dir))
            if not (np.isfinite(block).all() and np.isfinite(sc).all()):
                raise EdgekdError(f"the IG cache {self.dir} holds NaN/inf maps ({lo}…{hi - 1})", _rebuild_hint(self.dir))

    def load(self, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(indices, maps): maps memory-mapped read-only, float16, each scaled to a maximum of 1."""
        if not self.complete:
            raise EdgekdError(f"IG cache {self.dir} is incomplete", "run the same command again to finish computing it")
        if verify:
            self.verify()
        _, maps, _, indices, _, _ = self._verified_arrays()
        return np.asarray(indices), maps

    def raw_maps(self) -> np.ndarray:
        """The maps in IG units (``maps * scales``), float32, in memory: for analysis, not training."""
        _, maps, scales, _, _, _ = self._verified_arrays()
        return np.asarray(maps, dtype=np.float32) * np.asarray(scales)[:, None, None]


def data_fingerprint(images, labels: np.ndarray, indices: np.ndarray) -> str:
    """sha256 of the selected images, labels and indices, streamed (the images are not copied at once)."""
    h = hashlib.sha256()
    for lo in range(0, len(indices), 2048):
        h.update(np.ascontiguousarray(images[indices[lo : lo + 2048]]).data)
    h.update(np.ascontiguousarray(labels[indices]).data)
    h.update(np.asarray(indices, dtype=np.int64).tobytes())
    return h.hexdigest()


def precompute_ig(
    teacher: nn.Module,
    images,
    labels: np.ndarray,
    indices: np.ndarray,
    cache_dir: str | Path,
    mean,
    std,
    settings: IGSettings = IGSettings(),
    device: str = "cpu",
    show_progress: bool = True,
    rank: int = 0,
    world: int = 1,
    extra: dict | None = None,
) -> IGCache:
    """Compute (or finish computing) the IG maps of ``images[indices]`` into ``cache_dir``.

    With ``world > 1`` this process computes chunks ``rank, rank + world, …`` only; every
    rank must call it (rank 0 creates the files, the others wait for them).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    indices = np.asarray(indices, dtype=np.int64)
    n, h, w = len(indices), int(images.shape[1]), int(images.shape[2])
    expected = {
        "version": CACHE_VERSION,
        "teacher_sha256": model_fingerprint(teacher),
        "data_sha256": data_fingerprint(images, labels, indices),
        "indices_sha256": hashlib.sha256(np.ascontiguousarray(indices).data).hexdigest(),
        "n_steps": settings.n_steps,
        **({"amp": settings.amp} if settings.amp != "off" else {}),  # caches made in fp32 before this existed stay valid
        "method": settings.method,
        "baseline": "zeros (normalised space)",
        "target": "true label",
        "reduction": "sum over RGB of |IG|; stored float16 divided by each map's maximum (scales.npy)",
        "count": int(n),
        "shape": [int(n), h, w],
        "chunk": int(settings.batch_size),
        "normalisation": {"mean": list(mean), "std": list(std)},
    }
    cache = IGCache(cache_dir)
    cache.dir.mkdir(parents=True, exist_ok=True)
    n_chunks = (n + settings.batch_size - 1) // settings.batch_size
    with file_lock(cache.dir.parent / f".{cache.dir.name}.lock", what=f"the IG cache {cache.dir}"):
        cache.check(expected)
        if cache.manifest() is None and rank == 0:
            for f in FILES:
                (cache.dir / f).unlink(missing_ok=True)
            np.save(cache.dir / "indices.npy", indices)
            preallocated_memmap(cache.dir / "maps.npy", np.float16, (n, h, w)).flush()
            preallocated_memmap(cache.dir / "scales.npy", np.float32, (n,)).flush()
            np.save(cache.dir / "done.npy", np.zeros(n_chunks, dtype=bool))
            np.save(cache.dir / "digests.npy", np.zeros((n_chunks, 32), dtype=np.uint8))
            write_json(cache.dir / "manifest.json", {**expected, **(extra or {}),
                                                     "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    if world > 1:
        _wait_for(cache.dir / "manifest.json")
    cache._verified_arrays()  # the cheap whole-file checks before anything is written into it
    maps, scales = cache._open("maps.npy", "r+"), cache._open("scales.npy", "r+")
    done, digests = cache._open("done.npy", "r+"), cache._open("digests.npy", "r+")
    todo = [c for c in np.flatnonzero(~np.asarray(done)) if c % world == rank]
    if not todo:
        return cache
    teacher = teacher.to(device, memory_format=torch.channels_last).eval()
    started = time.perf_counter()
    progress = Progress(TextColumn("IG maps"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                        TimeRemainingColumn(), disable=not show_progress)
    computed = 0
    with progress:
        task = progress.add_task("ig", total=sum(min(n, (c + 1) * settings.batch_size) - c * settings.batch_size
                                                 for c in todo), rate="")
        for c in todo:
            lo, hi = c * settings.batch_size, min(n, (c + 1) * settings.batch_size)
            x = normalize(to_float(torch.from_numpy(np.require(images[indices[lo:hi]], requirements=["C", "W"]))),
                          mean, std).to(device)
            y = torch.from_numpy(labels[indices[lo:hi]]).to(device)
            raw = integrated_gradients(teacher, x, y, settings).detach().float().cpu().numpy()
            if not np.isfinite(raw).all():
                raise EdgekdError(f"the teacher's IG maps of images {lo}…{hi - 1} are NaN/inf",
                                  "the teacher outputs NaN/inf on them: check its weights and the input normalisation")
            peak = raw.reshape(len(raw), -1).max(1).astype(np.float32)
            block = (raw / np.maximum(peak, 1e-30)[:, None, None]).astype(np.float16)
            maps[lo:hi], scales[lo:hi] = block, peak
            maps.flush()
            scales.flush()
            digests[c] = _chunk_digest(block, peak)
            digests.flush()
            done[c] = True
            done.flush()
            computed += hi - lo
            progress.update(task, advance=hi - lo, rate=f"{computed / (time.perf_counter() - started):.1f} img/s")
    if rank == 0:
        with file_lock(cache.dir.parent / f".{cache.dir.name}.lock", what=f"the IG cache {cache.dir}"):
            meta = cache.manifest()
            meta["seconds_last_run"] = round(time.perf_counter() - started, 2)
            meta["images_per_second"] = round(computed / max(meta["seconds_last_run"], 1e-9), 3)
            write_json(cache.dir / "manifest.json", meta)
    return cache


def _wait_for(path: Path, timeout_s: float = 600.0) -> None:
    t0 = time.monotonic()
    while not path.exists():
        if time.monotonic() - t0 > timeout_s:
            raise EdgekdError(f"rank 0 did not create {path} within {timeout_s:.0f} s", "check rank 0's log")
        time.sleep(0.2)
