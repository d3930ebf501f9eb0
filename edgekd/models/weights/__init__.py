"""Teachers edgekd ships, so that `edgekd compress --data cifar10` distils from a strong one without training it.

Each has a card beside it (``<name>.json``: data, split, recipe, accuracy, sha256, the command that
made it). The weights are fp16 safetensors (read as fp32); ``edgekd train-teacher`` with the card's
command makes them again.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _entries() -> list[dict]:
    out = []
    for card in sorted(HERE.glob("*.json")):
        try:
            info = json.loads(card.read_text())
        except (OSError, ValueError):
            continue
        out.append({**info, "path": HERE / info["file"], "card": card})
    return out


SHIPPED = _entries()
