"""What an exported model takes as input. Pure Python: the device side reads it from the card."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class InputSpec:
    """Exported models take float32 ``shape`` (NCHW) = (pixels · pixel_scale − mean) / std.

    Full-integer INT8 TFLite models take int8 instead: the card records the scale and
    zero-point read from the model itself.
    """

    shape: tuple[int, ...] = (1, 3, 32, 32)
    layout: str = "NCHW"
    pixel_scale: float = 1 / 255
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    colour: str = "RGB"
    name: str = "input"
    output_name: str = "output"
    dynamic_batch: bool = True
    extra: dict = field(default_factory=dict)

    def preprocess(self, images_uint8_nhwc: np.ndarray) -> np.ndarray:
        x = images_uint8_nhwc.astype(np.float32) * np.float32(self.pixel_scale)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["size"] = list(self.shape[2:])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        """The inverse of :meth:`to_dict` (a card's ``preprocess`` entry)."""
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k != "size"})
