"""An exported classifier on images, on the device: numpy, OpenCV and ONNX Runtime or LiteRT; no torch.

Everything comes from the model's card (``card.json`` beside the files ``edgekd compress`` or
``edgekd export`` wrote): input size, pixel scale, mean/std, layout, class names, and which
files passed the export's accuracy gate. The pixels then take exactly the path the gate
scored (``InputSpec.preprocess`` → the format's runner), so a prediction here is the one the
card's accuracy describes.

    from edgekd.runtime import Classifier
    clf = Classifier("runs/compress/export/cifar10-airbench_x0_5-kd-ig")
    clf.predict("cat.png")            # Prediction(label='cat', probability=0.91, top_k=[('cat', 0.91), ...])
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekd.convert.runners import Predictor
from edgekd.convert.spec import InputSpec
from edgekd.errors import EdgekdError, require
from edgekd.utils.io import sha256_file

# Default order when the caller names no format: INT8 before float (4× smaller, faster on every CPU we have
# measured); on ARM LiteRT first, whose XNNPACK kernels are the ones written for it, elsewhere ONNX Runtime.
# An order, not a measurement: `edgekd bench` on the device says which file is fastest there.
PREFERENCE = {
    "arm": ("tflite-int8", "onnx-int8", "tflite", "onnx"),
    "other": ("onnx-int8", "tflite-int8", "onnx", "tflite"),
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


@dataclass
class Prediction:
    index: int
    label: str
    probability: float
    top_k: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"index": self.index, "label": self.label, "probability": round(self.probability, 6),
                "top_k": [{"label": lab, "probability": round(p, 6)} for lab, p in self.top_k]}


def machine_kind() -> str:
    return "arm" if platform.machine().lower() in ("aarch64", "arm64", "armv7l", "armv8l") else "other"


def read_card(model_dir) -> dict:
    directory = Path(model_dir)
    if not directory.is_dir():
        raise EdgekdError(f"model folder not found: {directory}",
                          "give the folder `edgekd compress` or `edgekd export` wrote (it holds card.json)")
    try:
        card = json.loads((directory / "card.json").read_text())
    except FileNotFoundError:
        raise EdgekdError(f"{directory} has no card.json: not an exported classifier",
                          "give the folder `edgekd compress` or `edgekd export` wrote") from None
    except (OSError, ValueError) as exc:
        raise EdgekdError(f"{directory / 'card.json'} is unreadable ({exc})", "export the model again") from None
    if card.get("task", "image-classification") != "image-classification" or "preprocess" not in card:
        raise EdgekdError(f"{directory} holds no image classifier (task {card.get('task')!r})",
                          "use `edgekd track` / `edgekd heartrate` for the DFE encoder")
    return card


def usable_formats(card: dict) -> dict[str, dict]:
    """Formats whose file exported and, for INT8, passed the accuracy gate."""
    return {name: row for name, row in (card.get("formats") or {}).items()
            if row.get("status") == "ok" and row.get("file") and (not row.get("int8") or row.get("gate") == "pass")}


class Classifier:
    """``Classifier(model_dir, format=None)`` → ``.predict(image or batch)``.

    ``format`` picks a file by its card name (``onnx``, ``onnx-int8``, ``tflite``, ``tflite-int8``);
    without it the first of :data:`PREFERENCE` that is usable and whose runtime is installed.
    A file whose sha256 differs from its card is still loaded, and :attr:`warnings` says so.
    """

    def __init__(self, model_dir, format: str | None = None, threads: int = 1, top_k: int = 3):
        self.directory = Path(model_dir)
        self.card = read_card(self.directory)
        self.spec = InputSpec.from_dict(self.card["preprocess"])
        self.size = tuple(self.card["preprocess"].get("size") or self.spec.shape[2:])
        self.classes = [str(c) for c in (self.card.get("classes") or (self.card.get("data") or {}).get("classes") or [])]
        self.top_k = top_k
        self.warnings: list[str] = []
        usable = usable_formats(self.card)
        formats = self.card.get("formats") or {}
        if format is not None:
            if format not in formats:
                raise EdgekdError(f"{self.directory.name} has no {format!r} file",
                                  f"its card lists: {', '.join(formats) or 'none'}")
            if format not in usable:
                row = formats[format]
                why = "failed the accuracy gate" if row.get("status") == "ok" else f"status {row.get('status')}"
                raise EdgekdError(f"{format} of {self.directory.name} {why}", f"use one of: {', '.join(usable) or 'none'}")
            order = [format]
        else:
            order = [f for f in PREFERENCE[machine_kind()] if f in usable] + [f for f in usable if f not in PREFERENCE["other"]]
        if not order:
            raise EdgekdError(f"no usable model file in {self.directory}", "its card records no file that exported "
                              "and passed the gate: export it again")
        skipped = []
        for name in order:
            row = formats[name]
            path = self.directory / row["file"]
            if not path.is_file():
                skipped.append(f"{name}: {row['file']} missing")
                continue
            try:
                self.predictor = Predictor(path, threads=threads)
            except EdgekdError as exc:  # that runtime is not installed here
                skipped.append(f"{name}: {exc.message}")
                continue
            self.format, self.path, self.row = name, path, row
            break
        else:
            raise EdgekdError(f"no model file of {self.directory} can run here ({'; '.join(skipped)})",
                              'install the runtimes with: pip install "edgekd[device]"')
        if row.get("sha256") and sha256_file(path) != row["sha256"]:
            self.warnings.append(f"{path.name}'s sha256 differs from its card: the file was changed after export, "
                                 "so the card's accuracy does not describe it")

    def __repr__(self) -> str:
        return f"Classifier({self.directory.name!r}, format={self.format!r}, input {self.size[0]}×{self.size[1]})"

    @property
    def test_accuracy(self) -> float | None:
        """The file's accuracy on the export's test split (from the card)."""
        return self.row.get("test_acc")

    def pixels(self, images) -> np.ndarray:
        """uint8 RGB (N, H, W, 3) at the model's size, from paths, arrays or a list of either."""
        items = _as_list(images)
        return np.stack([self._one(im) for im in items]) if items else np.zeros((0, *self.size, 3), np.uint8)

    def logits(self, images) -> np.ndarray:
        return self.predictor(self.spec.preprocess(self.pixels(images)))

    def predict(self, images, top_k: int | None = None) -> Prediction | list[Prediction]:
        """One :class:`Prediction` for one image (a path or an (H, W[, C]) array), a list for a batch."""
        logits = self.logits(images).astype(np.float64)
        z = np.exp(logits - logits.max(1, keepdims=True))
        probs = z / z.sum(1, keepdims=True)
        k = min(top_k or self.top_k, probs.shape[1])
        out = []
        for p in probs:
            order = np.argsort(-p, kind="stable")[:k]
            out.append(Prediction(int(order[0]), self.label(order[0]), float(p[order[0]]),
                                  [(self.label(i), float(p[i])) for i in order]))
        return out[0] if _is_single(images) else out

    def label(self, index) -> str:
        return self.classes[int(index)] if int(index) < len(self.classes) else str(int(index))

    def _one(self, image) -> np.ndarray:
        if isinstance(image, (str, Path)):
            image = read_image(image)
        elif not isinstance(image, np.ndarray):
            raise EdgekdError(f"cannot classify a {type(image).__name__}", "give an image path or a uint8 (H, W, 3) array")
        if image.dtype != np.uint8:
            raise EdgekdError(f"image pixels must be uint8 (0-255), got {image.dtype}",
                              "if they are floats in [0, 1]: (image * 255).round().astype(np.uint8)")
        if image.ndim == 2:
            image = image[..., None]
        if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or min(image.shape[:2]) < 1:
            raise EdgekdError(f"an image must be (H, W), (H, W, 3) or (H, W, 4) pixels, got shape {image.shape}",
                              "give one RGB image per item (a batch is (N, H, W, 3))")
        if image.shape[2] == 1:
            image = np.repeat(image, 3, axis=2)
        image = image[..., :3]
        if tuple(image.shape[:2]) != self.size:
            cv2 = require("cv2", extra="device", package="opencv-python-headless")
            shrink = image.shape[0] > self.size[0] or image.shape[1] > self.size[1]
            image = cv2.resize(image, (self.size[1], self.size[0]),
                               interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return np.ascontiguousarray(image)


def read_image(path) -> np.ndarray:
    """uint8 RGB pixels of an image file (OpenCV reads BGR: converted)."""
    cv2 = require("cv2", extra="device", package="opencv-python-headless")
    p = Path(path)
    if not p.is_file():
        raise EdgekdError(f"image not found: {p}", "give an image file (png, jpg, ...)")
    data = np.fromfile(p, np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise EdgekdError(f"{p} is not an image OpenCV can read", f"give one of: {', '.join(IMAGE_SUFFIXES)}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _is_single(images) -> bool:
    return isinstance(images, (str, Path)) or (isinstance(images, np.ndarray) and images.ndim in (2, 3))


def _as_list(images) -> list:
    if _is_single(images):
        return [images]
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images)
    if isinstance(images, (list, tuple)):
        return list(images)
    if isinstance(images, np.ndarray):
        raise EdgekdError(f"cannot classify an array of shape {images.shape}",
                          "give (H, W, 3) for one image or (N, H, W, 3) for a batch")
    raise EdgekdError(f"cannot classify a {type(images).__name__}", "give image paths or uint8 arrays")
