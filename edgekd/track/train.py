"""Unsupervised DFE training on face crops cut from face images or videos.

Crops: every detected face of every image is rescaled to a random width in
``face_width`` px (log-uniform; the tracker is evaluated at 160 px) and crops are centred
inside the face box (shrunk by 10 % so most crops are skin); images with no detected face
give crops from anywhere. Videos contribute up to ``frames_per_video`` evenly spaced
frames. ``colour_share`` of the crops come from colour images — the shared face data is
mostly grey ORL faces, which would otherwise teach the encoder nothing about chroma. Crops
are kept as uint8 BGR with a margin, so each epoch can augment them afresh.

Recipes (:data:`RECIPES`): ``paper`` is the paper's plain autoencoder on CIELAB crops;
``normalised`` adds a per-pixel photometric normalisation inside the encoder
(``norm_radius``); ``robust`` adds to that a denoising target (the input is augmented by
:mod:`edgekd.track.augment`, the target is the clean crop) and small rotations/scalings
about the crop centre; ``matched`` (the default, the shipped encoder) is the normalisation
plus the matching term below. Each setting can be turned on or
off alone (the ablations in benchmarks/tracking.md pick them on the validation subjects).

Held-out subjects: the ORL subjects s36–s40 and the Obama/Biden stills are never trained
on. Of those, the *validation* subjects (Biden, ORL s38–s40) pick the checkpoint; the
*test* subjects (Obama, ORL s36–s37) are only seen by ``edgekd track eval``. In a user's
own folder every fifth subject folder (sorted) is held out and used for validation.
Validation score: tracking error on short ground-truth sequences of the validation faces
(translation, a moving light, a global light change, heartbeat motion, JPEG q40 and MPEG-4
frames — the codecs since 2026-12-02), a lost or failed
point-frame counted as a 5 px miss — the quantity the tracker is for — plus the
reconstruction loss on validation crops.

Loss: MSE between the Gaussian-weighted output and the Gaussian-weighted target
(σ = 5 px by default, centred on the crop), which makes the encoding describe the
centre of the crop more than its rim; ``sigma=None`` gives plain MSE (the ablation).
The *matching term* (``match_weight`` > 0) adds what reconstruction alone does not ask for:
a region around the same crop, compressed by JPEG on a random block grid
(:func:`edgekd.track.augment.codec`), is encoded at every ±``match_radius`` position, and the
true position must have the encoding nearest the reference — a cross-entropy over the
tracker's own relative distances. It is self-supervised (the positions come from the crop,
no labels), and it is what made the encoder hold on compressed video (benchmarks/tracking.md).
``channels`` sets the encoder's widths: half the paper's (8,16,16,32,64) has a quarter of the
multiply-adds and runs 1.4× faster in ONNX Runtime INT8 (no faster in LiteRT), 0.02 px less accurate on
the long suite.
Adamax, batch 32. A checkpoint (model + optimiser + RNG + history) is written
atomically after every epoch; ``resume=True`` continues from it.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgekd.errors import EdgekdError
from edgekd.track.groundtruth import HELDOUT_ORL, HELDOUT_STILLS, VALIDATION_ORL, VALIDATION_STILLS
from edgekd.track.preprocess import CROP, bgr_to_lab01, cv2_module, detect_faces, read_image

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_EXT = {".mp4", ".avi", ".mkv", ".mov", ".webm"}
MARGIN = 12  # stored crops are CROP + 2·MARGIN px: room for the normalisation's context and a rotation
PAPER_CHANNELS = (16, 32, 32, 64, 128)
RECIPES = {
    "paper": {"norm_radius": 0, "photometric": False, "geometric": False, "match_weight": 0.0, "channels": PAPER_CHANNELS},
    # the first ablation's winner (benchmarks/tracking.md): the normalisation alone
    "normalised": {"norm_radius": 8, "photometric": False, "geometric": False, "match_weight": 0.0, "channels": PAPER_CHANNELS},
    "robust": {"norm_radius": 8, "photometric": True, "geometric": True, "match_weight": 0.0, "channels": PAPER_CHANNELS},
    # the shipped encoder: normalisation + the matching term (benchmarks/tracking.md: the validation winner)
    "matched": {"norm_radius": 8, "photometric": False, "geometric": False, "match_weight": 0.05, "channels": PAPER_CHANNELS},
}


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
    recipe: str = "matched"
    norm_radius: int | None = None  # None: the recipe's
    photometric: bool | None = None
    geometric: bool | None = None
    face_width: tuple[float, float] = (80.0, 320.0)
    colour_share: float | None = 0.5  # None: crops spread evenly over files
    val_frames: int = 30  # frames per validation sequence (0: reconstruction loss only)
    # matching term: the encoding at the true position of a codec-degraded region must be the nearest of its
    # (2·match_radius+1)² candidates to the reference (cross-entropy over −relative distance / temperature); 0 = off
    match_weight: float | None = None  # None: the recipe's
    match_radius: int = 2
    match_temperature: float = 0.02
    channels: tuple[int, ...] | None = None  # the encoder's five conv widths (None: the recipe's); the decoder mirrors them

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise EdgekdError(f"unknown DFE recipe {self.recipe!r}", f"use one of: {', '.join(RECIPES)}")
        for k, v in RECIPES[self.recipe].items():
            if getattr(self, k) is None:
                setattr(self, k, v)
        if not 0 <= self.norm_radius <= MARGIN:
            raise EdgekdError(f"norm_radius must be 0..{MARGIN}, got {self.norm_radius}")
        if self.colour_share is not None and not 0 <= self.colour_share <= 1:
            raise EdgekdError(f"colour_share must be in [0, 1], got {self.colour_share}")
        self.face_width = tuple(float(v) for v in self.face_width)
        if self.match_weight < 0 or self.match_temperature <= 0:
            raise EdgekdError(f"match weight must be ≥ 0 and temperature > 0, got {self.match_weight} / {self.match_temperature}")
        if not 1 <= self.match_radius <= MARGIN - self.norm_radius:
            raise EdgekdError(f"match_radius must be 1..{MARGIN - self.norm_radius} with norm_radius {self.norm_radius} "
                              f"(the stored crops' margin), got {self.match_radius}")
        try:
            self.channels = tuple(int(c) for c in self.channels)
        except (TypeError, ValueError):
            self.channels = ()
        if len(self.channels) != 5 or min(self.channels) < 1:
            raise EdgekdError(f"the DFE encoder needs five positive conv widths, got {self.channels or 'none'}",
                              "e.g. --channels 16,32,32,64,128 (the paper's) or 8,16,16,32,64 (half width, faster)")


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


def validation_files(held: list[Path]) -> list[Path]:
    """The held-out files that may pick a checkpoint: the validation subjects, never the test subjects."""
    known = [p for p in held if p.parent.name in VALIDATION_ORL or p.name in VALIDATION_STILLS]
    if known or any(p.parent.name in HELDOUT_ORL or p.name in HELDOUT_STILLS for p in held):
        return known
    return held


def _frames(path: Path, frames_per_video: int):
    if path.suffix.lower() in VIDEO_EXT:
        from edgekd.track.groundtruth import read_video

        frames, _ = read_video(path)
        idx = np.linspace(0, len(frames) - 1, min(frames_per_video, len(frames))).round().astype(int)
        return [frames[i] for i in idx]
    return [read_image(path)]


def _is_colour(img: np.ndarray) -> bool:
    small = img[::4, ::4].astype(np.int16)
    return bool(np.abs(small[..., 0] - small[..., 1]).mean() + np.abs(small[..., 2] - small[..., 1]).mean() > 2)


def crops_from(files: list[Path], n_crops: int, rng: np.random.Generator, frames_per_video: int = 10,
               face_width=(80.0, 320.0), colour_share: float | None = 0.5, margin: int = MARGIN) -> np.ndarray:
    """(N, S, S, 3) uint8 BGR crops, S = 31 + 2·margin, from every face of every file."""
    cv2 = cv2_module()
    faces = []  # (image, face box or None, colour?)
    for p in files:
        try:
            for frame in _frames(p, frames_per_video):
                boxes = detect_faces(frame, min_size=max(24, min(frame.shape[:2]) // 10))
                colour = _is_colour(frame)
                faces += [(frame, b, colour) for b in boxes] or [(frame, None, colour)]
        except EdgekdError:
            continue  # an unreadable file in a user's folder is skipped, not fatal
    if not faces:
        raise EdgekdError("none of the training files could be read")
    colour = np.array([c for _, _, c in faces])
    weight = np.ones(len(faces))
    if colour_share is not None and colour.any() and not colour.all():
        weight = np.where(colour, colour_share / colour.sum(), (1 - colour_share) / (~colour).sum())
    per = np.floor(weight / weight.sum() * n_crops).astype(int)
    per[rng.permutation(len(faces))[: n_crops - per.sum()]] += 1
    size = CROP + 2 * margin
    half = size // 2
    out = np.empty((n_crops, size, size, 3), np.uint8)
    k = 0
    lo, hi = np.log(face_width[0]), np.log(face_width[1])
    for (img, box, _), n in zip(faces, per):
        if n == 0:
            continue
        if box is not None:
            s = float(np.exp(rng.uniform(lo, hi))) / box[2]
        else:
            s = min(1.0, 400 / min(img.shape[:2]))
        scaled = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        if rng.random() < 0.5:  # mirrored faces are faces too
            scaled = scaled[:, ::-1]
            if box is not None:
                box = np.array([img.shape[1] - box[0] - box[2], box[1], box[2], box[3]])
        h, w = scaled.shape[:2]
        if h < size or w < size:
            continue
        x0, x1, y0, y1 = half, w - 1 - half, half, h - 1 - half
        if box is not None:
            x, y, bw, bh = np.asarray(box, float) * s
            bx0, bx1 = max(x0, x + 0.1 * bw), min(x1, x + 0.9 * bw)
            by0, by1 = max(y0, y + 0.1 * bh), min(y1, y + 0.9 * bh)
            if bx1 > bx0 and by1 > by0:
                x0, x1, y0, y1 = bx0, bx1, by0, by1
        cx = rng.integers(int(math.ceil(x0)), int(x1) + 1, n)
        cy = rng.integers(int(math.ceil(y0)), int(y1) + 1, n)
        for i in range(n):
            out[k] = scaled[cy[i] - half : cy[i] + half + 1, cx[i] - half : cx[i] + half + 1]
            k += 1
    return out[:k]


def lab_batch(crops: np.ndarray, size: int) -> np.ndarray:
    """uint8 BGR (N, S, S, 3) → float32 (N, 3, size, size) CIELAB/255 of the centre."""
    m = (crops.shape[1] - size) // 2
    centre = np.ascontiguousarray(crops[:, m : m + size, m : m + size])
    lab = bgr_to_lab01(centre.reshape(-1, size, 3)).reshape(len(crops), size, size, 3)
    return np.ascontiguousarray(lab.transpose(0, 3, 1, 2))


def get_batch(crops: np.ndarray, idx: np.ndarray, cfg: TrainConfig, context: int, rng: np.random.Generator):
    """(input, clean) float32 NCHW batches of ``context`` px: the input augmented as the recipe says, the clean crop as the target's source."""
    from edgekd.track.augment import augment_crop

    clean = crops[idx]
    if cfg.photometric or cfg.geometric:
        noisy = np.stack([augment_crop(c, rng, 0.9 if cfg.photometric else 0.0, 0.5 if cfg.geometric else 0.0) for c in clean])
    else:
        noisy = clean
    return lab_batch(noisy, context), lab_batch(clean, context)


def get_match_batch(crops: np.ndarray, idx: np.ndarray, context: int, radius: int, rng: np.random.Generator):
    """(reference, region) Lab batches for the matching term: the reference crop (context px; clean or through its own
    codec pass), and the region of context + 2·radius px around the same centre through another codec pass."""
    from edgekd.track.augment import codec

    clean = crops[idx]
    refs = np.stack([codec(c, rng) if rng.random() < 0.5 else c for c in clean])
    regions = np.stack([codec(c, rng) for c in clean])
    return lab_batch(refs, context), lab_batch(regions, context + 2 * radius)


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


def match_loss(encoder, reference, region, temperature: float):
    """Cross-entropy of picking the region's centre among its candidate positions, scored as the tracker scores them:
    squared distance to the reference encoding over the reference's squared norm."""
    import torch
    import torch.nn.functional as F

    ref = encoder(reference).flatten(1)  # (B, D)
    cand = encoder(region)  # (B, D, n, n)
    d = ((cand - ref[:, :, None, None]) ** 2).sum(1).flatten(1) / (ref.pow(2).sum(1, keepdim=True) + 1e-6)
    centre = torch.full((d.shape[0],), (d.shape[1] - 1) // 2, dtype=torch.long)
    return F.cross_entropy(-d / temperature, centre)


# ── training ────────────────────────────────────────────────────────────────


def _state_path(out: Path) -> Path:
    return out / "train_state.pt"


def validation_sequences(files: list[Path], n_frames: int, seed: int = 0) -> list[tuple]:
    """[(sequence, points)] of the validation faces under the validation motions (short, so it runs every epoch)."""
    from edgekd.track.groundtruth import face_frame, make_sequence, validation_motions
    from edgekd.track.preprocess import skin_points

    out = []
    firsts = {}
    for p in files:  # one face per subject: a folder is a subject, so is a loose still
        firsts.setdefault(p.parent if p.parent.name in VALIDATION_ORL or p.suffix.lower() == ".pgm" else p, p)
    for fi, p in enumerate(firsts.values()):
        img = read_image(p)
        if p.suffix.lower() == ".pgm":  # ORL faces are 92×112: upscale as the evaluation does
            img = cv2_module().resize(img, None, fx=2, fy=2, interpolation=cv2_module().INTER_CUBIC)
        try:
            frame, box = face_frame(img)
        except EdgekdError:
            continue
        pts = skin_points(box)
        for mi, motion in enumerate(validation_motions().values()):
            out.append((make_sequence(frame, n_frames, motion, seed=seed + 100 * fi + mi), pts))
    return out


def validation_score(encoder, sequences) -> float:
    """Mean error over every point-frame of the validation sequences, a lost or failed one counted as a 5 px miss."""
    from edgekd.track import create_tracker, track_video
    from edgekd.track.metrics import capped_errors, point_errors

    scores = []
    for seq, pts in sequences:
        tracks = track_video(create_tracker("dfe", encoder=encoder, max_refs=1), seq.frames, pts)
        scores.append(capped_errors(point_errors(tracks, seq.true_positions(pts))[1:]))
    return float(np.concatenate([s.ravel() for s in scores]).mean()) if scores else float("nan")


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
    train_files, held_files = split_subjects(files)
    val_files = validation_files(held_files)
    if not val_files:
        raise EdgekdError("no validation subjects among the held-out files", "add face images of other people to --data")
    rng = np.random.default_rng(cfg.seed)
    x_train = crops_from(train_files, cfg.train_crops, rng, cfg.frames_per_video, cfg.face_width, cfg.colour_share)
    x_val = crops_from(val_files, cfg.val_crops, np.random.default_rng(cfg.seed + 1), cfg.frames_per_video, cfg.face_width,
                       cfg.colour_share)
    val_seqs = validation_sequences(val_files, cfg.val_frames, cfg.seed) if cfg.val_frames else []
    log(f"crops: {len(x_train)} train from {len(train_files)} files, {len(x_val)} validation from {len(val_files)} files, "
        f"{len(val_seqs)} validation sequences ({time.time() - t0:.1f}s)")

    torch.manual_seed(cfg.seed)
    model = create_model("dfe_autoencoder", channels=cfg.channels, norm_radius=cfg.norm_radius)
    context = model.encoder.context
    opt = torch.optim.Adamax(model.parameters(), lr=cfg.lr)
    weight = torch.from_numpy(gaussian_weight(CROP, cfg.sigma))
    history: list[dict] = []
    start = 0
    best = math.inf
    state_file = _state_path(out)
    if resume and state_file.is_file():
        st = torch.load(state_file, map_location="cpu", weights_only=True)
        same = lambda c: {k: v for k, v in c.items() if k not in ("epochs", "out", "threads")}  # noqa: E731
        if same(_jsonable(st.get("config", {}))) != same(_jsonable(asdict(cfg))):
            raise EdgekdError(f"{state_file} was written with different settings", "use the same options, or a new --out")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        torch.set_rng_state(st["torch_rng"])
        history, start, best = list(st["history"]), int(st["epoch"]), float(st["best"])
        log(f"resumed after epoch {start}")
    elif resume:
        log(f"nothing to resume in {out}; starting fresh")

    def target_of(clean):
        x = torch.from_numpy(clean)
        return model.target(x) if cfg.norm_radius else x

    xv_in, xv_clean = get_batch(x_val, np.arange(len(x_val)), cfg, context, np.random.default_rng(cfg.seed + 2))
    steps = math.ceil(len(x_train) / cfg.batch_size)
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
            aug_rng = np.random.default_rng([cfg.seed, epoch])
            perm = torch.randperm(len(x_train), generator=g).numpy()
            model.train()
            total = 0.0
            task = bar.add_task("", total=steps, epoch=epoch + 1, loss=0.0) if bar else None
            for s in range(steps):
                idx = perm[s * cfg.batch_size : (s + 1) * cfg.batch_size]
                xb, clean = get_batch(x_train, idx, cfg, context, aug_rng)
                with torch.no_grad():
                    target = target_of(clean)
                loss = weighted_mse(model(torch.from_numpy(xb)), target, weight)
                if cfg.match_weight:
                    ref, region = get_match_batch(x_train, idx, context, cfg.match_radius, aug_rng)
                    loss = loss + cfg.match_weight * match_loss(model.encoder, torch.from_numpy(ref), torch.from_numpy(region),
                                                                cfg.match_temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                if bar:
                    bar.update(task, advance=1, loss=total / min(len(x_train), (s + 1) * cfg.batch_size))
            model.eval()
            with torch.inference_mode():
                val = sum(float(weighted_mse(model(torch.from_numpy(xv_in[i : i + 256])), target_of(xv_clean[i : i + 256]), weight))
                          * len(xv_in[i : i + 256]) for i in range(0, len(xv_in), 256)) / len(xv_in)
                track = validation_score(model.encoder, val_seqs) if val_seqs else float("nan")
            rec = {"epoch": epoch + 1, "train_loss": total / len(x_train), "val_loss": val, "val_track_px": track,
                   "seconds": time.time() - te}
            history.append(rec)
            meta = {"train": _jsonable(asdict(cfg)), "history": history, "crop": CROP, "context": context,
                    "input": "CIELAB/255 (OpenCV 8-bit Lab), NCHW float32"}
            score = track if val_seqs else val  # the tracking score picks the checkpoint when there is one
            if score < best:
                best = score
                save_model(out / "dfe_autoencoder.pt", model, "dfe_autoencoder", meta=meta)
            save_model(out / "last.pt", model, "dfe_autoencoder", meta=meta)
            st = {"config": _jsonable(asdict(cfg)), "model": model.state_dict(), "optimizer": opt.state_dict(),
                  "torch_rng": torch.get_rng_state(), "history": history, "epoch": epoch + 1, "best": best}
            atomic_torch_save(state_file, st)
            write_json(out / "history.json", history)
            if bar:
                bar.remove_task(task)
            log(f"epoch {epoch + 1}/{cfg.epochs}: train {rec['train_loss']:.5f}  validation loss {val:.5f}  "
                f"validation tracking {track:.3f} px  ({rec['seconds']:.0f}s)")
    finally:
        if bar:
            bar.stop()
    return {"model": str(out / "dfe_autoencoder.pt"), "history": history, "best_val_score": best,
            "selected_by": "val_track_px" if val_seqs else "val_loss",
            "train_files": len(train_files), "val_files": len(val_files), "seconds": time.time() - t0}


def _jsonable(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
