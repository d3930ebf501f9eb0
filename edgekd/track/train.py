"""Unsupervised DFE training on 31×31 CIELAB crops cut from face images or videos.

Crops: each image is rescaled so its (Haar-detected) face is 120–220 px wide — around
the 160 px scale the tracker is evaluated at — and crops are centred inside the face box
(shrunk by 10 % so most crops are skin). Images with no detected face give crops from
anywhere. Videos contribute up to ``frames_per_video`` evenly spaced frames.

Held-out subjects: the ORL subjects s36–s40 and the Obama/Biden stills of the shared
data (the tracking evaluation uses the same ones) — in a user's own folder, every fifth
subject folder (sorted) is held out instead. Validation loss is computed on their crops.

Loss: MSE between the Gaussian-weighted output and the Gaussian-weighted input
(σ = 5 px by default, centred on the crop), which makes the encoding describe the
centre of the crop more than its rim; ``sigma=None`` gives plain MSE (the ablation).
Adamax, batch 32. A checkpoint (model + optimiser + RNG + history) is written
atomically after every epoch; ``resume=True`` continues from it.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgekd.errors import EdgekdError
from edgekd.track.groundtruth import HELDOUT_ORL, HELDOUT_STILLS
from edgekd.track.preprocess import CROP, HALF, bgr_to_lab01, cv2_module, detect_faces, read_image

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_EXT = {".mp4", ".avi", ".mkv", ".mov", ".webm"}


@dataclass
class TrainConfig:
    data: str
    out: str = "runs/dfe"
    epochs: int = 6
    train_crops: int = 6000
    val_crops: int = 1000
    batch_size: int = 32
    lr: float = 2e-3  # Adamax default
    sigma: float | None = 5.0  # None → plain MSE
    seed: int = 0
    frames_per_video: int = 10
    threads: int = 1


# ── data ────────────────────────────────────────────────────────────────────


def list_sources(root) -> list[Path]:
    root = Path(root)
    if not root.exists():
        raise EdgekdError(f"training data not found: {root}", "point --data at a folder of face images or videos")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXT | VIDEO_EXT)
    if not files:
        raise EdgekdError(f"no images or videos under {root}", f"supported: {', '.join(sorted(IMAGE_EXT | VIDEO_EXT))}")
    return files


def split_subjects(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """(train, held-out) by subject, never by crop, so validation faces are unseen."""
    known = [p for p in files if p.parent.name in HELDOUT_ORL or p.name in HELDOUT_STILLS]
    if known:
        held = set(known)
    else:
        subjects = sorted({p.parent for p in files})
        if len(subjects) >= 2:
            held_subjects = set(subjects[4::5]) or {subjects[-1]}
            held = {p for p in files if p.parent in held_subjects}
        else:  # one flat folder: hold out every fifth file
            held = set(files[4::5])
    train = [p for p in files if p not in held]
    val = [p for p in files if p in held]
    if not train or not val:
        raise EdgekdError("need at least two images/videos to split train and held-out subjects", "add more files to --data")
    return train, val


def _frames(path: Path, frames_per_video: int):
    if path.suffix.lower() in VIDEO_EXT:
        from edgekd.track.groundtruth import read_video

        frames, _ = read_video(path)
        idx = np.linspace(0, len(frames) - 1, min(frames_per_video, len(frames))).round().astype(int)
        return [frames[i] for i in idx]
    return [read_image(path)]


def crops_from(files: list[Path], n_crops: int, rng: np.random.Generator, frames_per_video: int = 10) -> np.ndarray:
    """(N, 3, 31, 31) float32 CIELAB-in-[0,1] crops, spread evenly over the files."""
    cv2 = cv2_module()
    images = []
    for p in files:
        try:
            for frame in _frames(p, frames_per_video):
                boxes = detect_faces(frame, min_size=max(24, min(frame.shape[:2]) // 10))
                images.append((frame, boxes[0] if len(boxes) else None))
        except EdgekdError:
            continue  # an unreadable file in a user's folder is skipped, not fatal
    if not images:
        raise EdgekdError("none of the training files could be read")
    per = np.full(len(images), n_crops // len(images))
    per[: n_crops - per.sum()] += 1
    out = np.empty((n_crops, 3, CROP, CROP), np.float32)
    k = 0
    for (img, box), n in zip(images, per):
        if n == 0:
            continue
        if box is not None:
            s = rng.uniform(120, 220) / box[2]
        else:
            s = min(1.0, 400 / min(img.shape[:2]))
        scaled = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        lab = bgr_to_lab01(scaled)
        h, w = lab.shape[:2]
        if h < CROP or w < CROP:
            continue
        if box is not None:
            x, y, bw, bh = np.asarray(box, float) * s
            x0, x1 = max(HALF, x + 0.1 * bw), min(w - 1 - HALF, x + 0.9 * bw)
            y0, y1 = max(HALF, y + 0.1 * bh), min(h - 1 - HALF, y + 0.9 * bh)
            if x1 <= x0 or y1 <= y0:
                x0, x1, y0, y1 = HALF, w - 1 - HALF, HALF, h - 1 - HALF
        else:
            x0, x1, y0, y1 = HALF, w - 1 - HALF, HALF, h - 1 - HALF
        cx = rng.integers(int(math.ceil(x0)), int(x1) + 1, n)
        cy = rng.integers(int(math.ceil(y0)), int(y1) + 1, n)
        for i in range(n):
            out[k] = lab[cy[i] - HALF : cy[i] + HALF + 1, cx[i] - HALF : cx[i] + HALF + 1].transpose(2, 0, 1)
            k += 1
    return out[:k]


# ── loss ────────────────────────────────────────────────────────────────────


def gaussian_weight(size: int = CROP, sigma: float | None = 5.0):
    """(size, size) weights exp(−r²/2σ²) around the centre; all ones for sigma=None (plain MSE)."""
    if sigma is None:
        return np.ones((size, size), np.float32)
    if sigma <= 0:
        raise EdgekdError(f"sigma must be positive, got {sigma}", "or use --loss mse")
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size]
    return np.exp(-((xx - c) ** 2 + (yy - c) ** 2) / (2 * sigma**2)).astype(np.float32)


def weighted_mse(output, target, weight):
    """mean((w·output − w·target)²): the DFE reconstruction loss (torch tensors)."""
    return ((weight * output - weight * target) ** 2).mean()


# ── training ────────────────────────────────────────────────────────────────


def _state_path(out: Path) -> Path:
    return out / "train_state.pt"


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True, log=print) -> dict:
    """Train; returns {"model": path of the best model, "history": [...], ...}."""
    import torch

    from edgekd.models import create_model
    from edgekd.models.checkpoint import save_model
    from edgekd.utils.io import atomic_torch_save, write_json

    torch.set_num_threads(max(1, cfg.threads))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    files = list_sources(cfg.data)
    train_files, val_files = split_subjects(files)
    rng = np.random.default_rng(cfg.seed)
    x_train = crops_from(train_files, cfg.train_crops, rng, cfg.frames_per_video)
    x_val = crops_from(val_files, cfg.val_crops, np.random.default_rng(cfg.seed + 1), cfg.frames_per_video)
    log(f"crops: {len(x_train)} train from {len(train_files)} files, {len(x_val)} held-out from {len(val_files)} files "
        f"({time.time() - t0:.1f}s)")

    torch.manual_seed(cfg.seed)
    model = create_model("dfe_autoencoder")
    opt = torch.optim.Adamax(model.parameters(), lr=cfg.lr)
    weight = torch.from_numpy(gaussian_weight(CROP, cfg.sigma))
    history: list[dict] = []
    start = 0
    best = math.inf
    state_file = _state_path(out)
    if resume and state_file.is_file():
        st = torch.load(state_file, map_location="cpu", weights_only=True)
        same = lambda c: {k: v for k, v in c.items() if k not in ("epochs", "out", "threads")}  # noqa: E731
        if same(st.get("config", {})) != same(asdict(cfg)):
            raise EdgekdError(f"{state_file} was written with different settings", "use the same options, or a new --out")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        torch.set_rng_state(st["torch_rng"])
        history, start, best = list(st["history"]), int(st["epoch"]), float(st["best"])
        log(f"resumed after epoch {start}")
    elif resume:
        log(f"nothing to resume in {out}; starting fresh")

    xt, xv = torch.from_numpy(x_train), torch.from_numpy(x_val)
    steps = math.ceil(len(xt) / cfg.batch_size)
    bar = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("[bold]DFE[/] epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("loss {task.fields[loss]:.5f}"), TimeRemainingColumn())
        bar.start()
    try:
        for epoch in range(start, cfg.epochs):
            te = time.time()
            g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
            perm = torch.randperm(len(xt), generator=g)
            model.train()
            total = 0.0
            task = bar.add_task("", total=steps, epoch=epoch + 1, loss=0.0) if bar else None
            for s in range(steps):
                xb = xt[perm[s * cfg.batch_size : (s + 1) * cfg.batch_size]]
                if torch.rand((), generator=g) < 0.5:  # mirrored faces are faces too
                    xb = xb.flip(-1)
                loss = weighted_mse(model(xb), xb, weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(xb)
                if bar:
                    bar.update(task, advance=1, loss=total / min(len(xt), (s + 1) * cfg.batch_size))
            model.eval()
            with torch.inference_mode():
                val = sum(float(weighted_mse(model(xv[i : i + 256]), xv[i : i + 256], weight)) * len(xv[i : i + 256])
                          for i in range(0, len(xv), 256)) / len(xv)
            rec = {"epoch": epoch + 1, "train_loss": total / len(xt), "val_loss": val, "seconds": time.time() - te}
            history.append(rec)
            meta = {"train": asdict(cfg), "history": history, "crop": CROP, "input": "CIELAB/255 (OpenCV 8-bit Lab), NCHW float32"}
            if val < best:
                best = val
                save_model(out / "dfe_autoencoder.pt", model, "dfe_autoencoder", meta=meta)
            save_model(out / "last.pt", model, "dfe_autoencoder", meta=meta)
            st = {"config": asdict(cfg), "model": model.state_dict(), "optimizer": opt.state_dict(),
                  "torch_rng": torch.get_rng_state(), "history": history, "epoch": epoch + 1, "best": best}
            atomic_torch_save(state_file, st)
            write_json(out / "history.json", history)
            if bar:
                bar.remove_task(task)
            log(f"epoch {epoch + 1}/{cfg.epochs}: train {rec['train_loss']:.5f}  held-out {val:.5f}  ({rec['seconds']:.0f}s)")
    finally:
        if bar:
            bar.stop()
    return {"model": str(out / "dfe_autoencoder.pt"), "history": history, "best_val_loss": best,
            "train_files": len(train_files), "val_files": len(val_files), "seconds": time.time() - t0}
