"""Inputs for a benchmark: real images from the model card when there is one, random otherwise.

Latency of these CNNs does not depend on pixel values, but a full-integer model fed
garbage saturates differently from one fed images, and a card with samples is what a
user's export has anyway — so real images are used when available.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from edgekd.bench.runtimes import TensorSpec
from edgekd.errors import EdgekdError

CARD_NAME = "card.json"


@dataclass
class Card:
    path: Path
    layout: str
    size: tuple[int, int] | None
    pixel_scale: float
    mean: np.ndarray
    std: np.ndarray
    samples: np.ndarray | None  # uint8 (N, H, W, 3) RGB
    file_sha256: dict | None = None  # exported file name → sha256 the card recorded


def load_card(model_path: Path, notes: list[str]) -> Card | None:
    """Read ``card.json`` next to the model; a broken card is a note, not a failure."""
    path = Path(model_path).with_name(CARD_NAME)
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text())
        pre = card.get("preprocess") or {}
        size = tuple(int(s) for s in pre["size"]) if pre.get("size") else None
        samples = None
        if card.get("samples"):
            samples_path = path.parent / card["samples"]
            samples = np.load(samples_path, allow_pickle=False)
            if samples.dtype != np.uint8 or samples.ndim != 4 or samples.shape[-1] != 3 or len(samples) == 0:
                notes.append(f"{samples_path.name}: expected uint8 (N,H,W,3), got {samples.dtype} {samples.shape}; using random input")
                samples = None
        return Card(
            path=path,
            layout=str(pre.get("layout", "NCHW")).upper(),
            size=size,  # type: ignore[arg-type]
            pixel_scale=float(pre.get("pixel_scale", 1 / 255)),
            mean=np.asarray(pre.get("mean", [0.0, 0.0, 0.0]), dtype=np.float32),
            std=np.asarray(pre.get("std", [1.0, 1.0, 1.0]), dtype=np.float32),
            samples=samples,
            file_sha256={row["file"]: row["sha256"] for row in (card.get("formats") or {}).values()
                         if isinstance(row, dict) and row.get("file") and row.get("sha256")},
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        notes.append(f"{path.name} unreadable ({type(exc).__name__}: {str(exc)[:80]}); using random input")
        return None


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        shape = ()
    if not shape or any(s <= 0 for s in shape):
        raise EdgekdError(f"bad input shape {text!r}", "write it as comma-separated positive sizes, e.g. 1,3,32,32")
    return shape


def _image_layout(shape: Sequence) -> str | None:
    if len(shape) != 4:
        return None
    if shape[1] == 3:
        return "NCHW"
    if shape[3] == 3:
        return "NHWC"
    return None


def resolve_shapes(
    specs: list[TensorSpec],
    batch: int,
    card: Card | None,
    input_shape: tuple[int, ...] | None = None,
) -> list[tuple[int, ...]]:
    """Concrete shapes to feed: the batch goes into dim 0, other open dims come from the card."""
    if input_shape is not None:
        if len(specs) != 1:
            raise EdgekdError(f"--input-shape gives one shape but the model has {len(specs)} inputs")
        return [(batch, *input_shape[1:])]
    shapes = []
    for spec in specs:
        shape = list(spec.shape)
        if not shape:
            shapes.append(())
            continue
        shape[0] = batch
        if len(shape) == 4 and any(d is None for d in shape[1:]) and card and card.size:
            h, w = card.size
            layout = card.layout if card.layout in ("NCHW", "NHWC") else "NCHW"
            fill = [3, h, w] if layout == "NCHW" else [h, w, 3]
            shape[1:] = [d if d is not None else f for d, f in zip(shape[1:], fill)]
        if any(d is None for d in shape):
            raise EdgekdError(
                f"input {spec.name!r} has open dimensions {list(spec.shape)} the harness cannot fill",
                "pass --input-shape (e.g. 1,3,32,32) or put a card.json with preprocess.size next to the model",
            )
        shapes.append(tuple(int(d) for d in shape))
    return shapes


def check_file_matches_card(card: Card | None, model_path: Path) -> None:
    """The card records each exported file's sha256: a file changed since then is not measured as if it were that model."""
    if card is None or not card.file_sha256 or model_path.name not in card.file_sha256:
        return
    import hashlib

    h = hashlib.sha256()
    with open(model_path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    if h.hexdigest() != card.file_sha256[model_path.name]:
        raise EdgekdError(f"{model_path.name} differs from the file {card.path.name} describes (sha256): it was "
                          "changed or damaged after export", "export it again, or pass --random-input to ignore the card")


def check_card_fits(card: Card | None, shapes: list[tuple], model_path: Path) -> None:
    """A card.json beside a model that takes another input belongs to another model: say so, do not guess."""
    if card is None or not card.size or len(shapes) != 1 or len(shapes[0]) != 4:
        return
    shape = shapes[0]
    layout = _image_layout(shape)  # the model's own layout (LiteRT files may be NHWC, the card describes NCHW)
    hw = None if layout is None else tuple(shape[2:]) if layout == "NCHW" else tuple(shape[1:3])
    if hw != tuple(card.size):
        raise EdgekdError(
            f"{model_path.name} takes {list(shape[1:])} but {card.path.name} beside it describes "
            f"3-channel {card.size[0]}×{card.size[1]} images: the card belongs to another model",
            "put the model in its own export folder, or pass --random-input to ignore the card")


def _resize_nearest(images: np.ndarray, h: int, w: int) -> np.ndarray:
    ys = (np.arange(h) * images.shape[1] / h).astype(int)
    xs = (np.arange(w) * images.shape[2] / w).astype(int)
    return images[:, ys][:, :, xs]


def _quantise(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    info = np.iinfo(spec.dtype)
    q = np.round(x / spec.scale) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def _from_images(images: np.ndarray, spec: TensorSpec, shape: tuple, card: Card) -> np.ndarray:
    layout = _image_layout(shape)
    h, w = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    if images.shape[1:3] != (h, w):
        images = _resize_nearest(images, h, w)
    dtype = np.dtype(spec.dtype)
    if dtype == np.uint8 and not spec.scale:
        x = images  # the model wants raw pixels
    else:
        x = (images.astype(np.float32) * card.pixel_scale - card.mean) / card.std
        if np.issubdtype(dtype, np.integer):
            if not spec.scale:
                raise EdgekdError(f"input {spec.name!r} is {dtype.name} without quantisation parameters")
            x = _quantise(x, spec)
        else:
            x = x.astype(dtype)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if layout == "NCHW" else x)


def _random(spec: TensorSpec, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    if spec.dtype is None:
        raise EdgekdError(f"input {spec.name!r} has a type the harness cannot synthesise", "bench a model with numeric inputs")
    dtype = np.dtype(spec.dtype)
    if np.issubdtype(dtype, np.floating):
        # Normalised-image statistics: what an exported model sees after preprocessing.
        return rng.standard_normal(shape).astype(dtype)
    if np.issubdtype(dtype, np.integer) and spec.scale:
        return _quantise(rng.standard_normal(shape).astype(np.float32), spec)
    if dtype == np.uint8:
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        return np.zeros(shape, dtype=dtype)  # ids/masks: zeros are always valid
    raise EdgekdError(f"input {spec.name!r} has a type the harness cannot synthesise ({dtype.name})")


def make_feeds(
    specs: list[TensorSpec],
    shapes: list[tuple],
    card: Card | None,
    rng: np.random.Generator,
    n_sets: int = 8,
) -> tuple[list[list[np.ndarray]], str]:
    """A few feed sets (cycled during timing) and a description of where they came from."""
    use_images = (
        card is not None
        and card.samples is not None
        and len(specs) == 1
        and _image_layout(shapes[0]) is not None
    )
    sets = []
    if use_images:
        samples = card.samples
        batch = shapes[0][0]
        for k in range(n_sets):
            idx = (np.arange(batch) + k * batch) % len(samples)
            sets.append([_from_images(samples[idx], specs[0], shapes[0], card)])
        source = f"card images ({len(samples)} from {card.path.parent.name}/{card.path.name})"
    else:
        for _ in range(n_sets):
            sets.append([_random(spec, shape, rng) for spec, shape in zip(specs, shapes)])
        source = "random"
    return sets, source
