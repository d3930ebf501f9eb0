"""Mutation fuzzing of edgekd's loaders: every mutated input must end in a one-line error or a correct result.

Each target makes one valid file with the product itself, mutates it (bit flips, overwritten
runs, truncation, a damaged header, random bytes) and feeds it to the loader a user's
command would call. Outcomes:

- ``error``: an EdgekdError (what the CLI prints as one line, exit code 2);
- ``ok``: loaded, and — where the format carries integrity data (edgekd model files, IG
  caches, exported files with their card) — equal to the original;
- ``ok-content``: loaded a file with no integrity data; the result is what the mutated file holds
  (a decodable PNG, a video frame);
- ``silent``: loaded where integrity data exists, but different from the original: a silent wrong answer;
- ``traceback``: any other exception;
- ``crash``: the process died (a native runtime's segfault).

Targets run in their own subprocess so that a native crash is counted, not fatal. Used by
tests/test_fuzz.py (a few hundred inputs) and benchmarks/fuzz_loaders.py (the published summary).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("png_folder", "zip_folder", "npz", "csv", "edgekd_model", "state_dict", "onnx_card", "tflite_card",
           "ig_cache", "video", "trajectories")


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    kind = rng.integers(0, 6)
    if len(b) == 0:
        return bytes(rng.integers(0, 256, 16, dtype=np.uint8))
    if kind == 0:  # a few bit flips anywhere
        for i in rng.integers(0, len(b), rng.integers(1, 9)):
            b[i] ^= 1 << int(rng.integers(0, 8))
    elif kind == 1:  # a run of bytes overwritten
        start = int(rng.integers(0, len(b)))
        n = int(rng.integers(1, 65))
        b[start : start + n] = bytes(rng.integers(0, 256, min(n, len(b) - start), dtype=np.uint8))
    elif kind == 2:  # truncated
        b = b[: int(rng.integers(0, len(b)))]
    elif kind == 3:  # the header damaged
        for i in range(min(len(b), 64)):
            if rng.random() < 0.2:
                b[i] = int(rng.integers(0, 256))
    elif kind == 4:  # random bytes of the same length
        b = bytearray(rng.integers(0, 256, len(b), dtype=np.uint8))
    else:  # zeros in the middle
        start = int(rng.integers(0, len(b)))
        b[start : start + 4096] = bytes(min(4096, len(b) - start))
    return bytes(b)


# ───────────────────────── targets (run inside the subprocess) ─────────────────────────


def _digits_images(n=20):
    from edgekd.data import load_dataset

    d = load_dataset("digits", show_progress=False)
    return d.train.images[:n], d.train.labels[:n]


def _setup(target: str, work: Path):
    """(file to mutate, loader(path) -> result, original result, integrity?)"""
    from PIL import Image

    if target in ("png_folder", "zip_folder", "npz", "csv"):
        from edgekd.data import load_dataset

        images, labels = _digits_images(40)
        root = work / "ds"
        for i, (im, lab) in enumerate(zip(images, labels)):
            split = "test" if i % 4 == 0 else "train"
            (root / split / f"c{lab % 2}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(im).save(root / split / f"c{lab % 2}" / f"{i}.png")
        if target == "png_folder":
            victim = next((root / "train").rglob("*.png"))
        elif target == "zip_folder":
            import shutil

            victim = Path(shutil.make_archive(str(work / "ds"), "zip", root))
        elif target == "npz":
            victim = work / "d.npz"
            np.savez(victim, x_train=images[10:], y_train=labels[10:] % 2, x_test=images[:10], y_test=labels[:10] % 2)
        else:
            victim = work / "list.csv"
            victim.write_text("path,label,split\n" + "\n".join(
                f"ds/{'test' if i % 4 == 0 else 'train'}/c{lab % 2}/{i}.png,c{lab % 2},{'test' if i % 4 == 0 else 'train'}"
                for i, lab in enumerate(labels)))
        src = root if target == "png_folder" else victim

        def load(_p):
            d = load_dataset(src, show_progress=False)
            return d.train.fingerprint() + d.test.fingerprint()

        return victim, load, False
    if target in ("edgekd_model", "state_dict"):
        from edgekd.models import create_model
        from edgekd.models.sources import load_model, save_model

        import torch

        m = create_model("student", cf=139.43)
        if target == "edgekd_model":
            victim = work / "student.pt"
            save_model(victim, m, "student", meta={"role": "student"})
            arch = None
        else:
            from safetensors.torch import save_file

            victim = work / "weights.safetensors"
            save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(victim))
            arch = "student"
        x = torch.zeros(1, 3, 32, 32)

        def load(p):
            with torch.no_grad():
                return load_model(p, arch=arch, kwargs={"cf": 139.43} if arch else None).model(x).numpy().tobytes()

        return victim, load, target == "edgekd_model"
    if target in ("onnx_card", "tflite_card"):
        from edgekd.bench import run_benchmark
        from edgekd.convert.classifier import LabelledImages, export_classifier
        from edgekd.convert.spec import InputSpec
        from edgekd.models import create_model

        images, labels = _digits_images(32)
        fmt = "onnx-int8" if target == "onnx_card" else "tflite-int8"
        export_classifier(create_model("student", cf=1121.71).eval(), InputSpec(), work / "export", images,
                          LabelledImages(images, labels), LabelledImages(images, labels), formats=fmt, gate_pp=100,
                          log=lambda m: None)
        victim = work / "export" / ("model.int8.onnx" if target == "onnx_card" else "model.int8.tflite")

        def load(p):
            run = run_benchmark([p], runs=2, warmup=0, threads=[1], min_time_s=0)
            r = run.results[0]
            if not r.ok:
                from edgekd.errors import EdgekdError

                raise EdgekdError(r.error)
            return "measured"

        return victim, load, True
    if target == "ig_cache":
        from edgekd.distill.ig import IGCache, IGSettings, precompute_ig
        from edgekd.models import create_model

        images, labels = _digits_images(24)
        import torch

        torch.manual_seed(0)
        precompute_ig(create_model("resnet8").eval(), images, labels, np.arange(24), work / "ig", (0.5,) * 3, (0.25,) * 3,
                      IGSettings(n_steps=2, batch_size=8), show_progress=False)
        state = {"i": 0}
        files = ["maps.npy", "scales.npy", "indices.npy", "done.npy", "digests.npy", "manifest.json"]

        def pick(rng):  # a different cache file each time
            state["i"] += 1
            return work / "ig" / files[state["i"] % len(files)]

        def load(_p):
            idx, maps = IGCache(work / "ig").load()
            return np.asarray(idx).tobytes() + np.asarray(maps).tobytes()

        return pick, load, True
    if target == "video":
        import cv2

        victim = work / "v.avi"
        w = cv2.VideoWriter(str(victim), cv2.VideoWriter_fourcc(*"FFV1"), 15.0, (64, 48))
        rng = np.random.default_rng(0)
        for _ in range(30):
            w.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
        w.release()
        from edgekd.heartrate.pipeline import open_source

        def load(p):
            cap, rate, _ = open_source(p)
            shapes = []
            while len(shapes) < 30:
                ok, frame = cap.read()
                if not ok:
                    break
                shapes.append(frame.shape)  # a damaged header can decode as another size: content, not a crash
            cap.release()
            return rate, shapes

        return victim, load, False
    if target == "trajectories":
        from edgekd.heartrate.tracks import load_tracks

        victim = work / "tracks.csv"
        t = np.arange(60) / 30.0
        rows = ["frame,time_s,point,x,y,ok"] + [f"{f},{t[f]:.4f},{p},{10 + p},{20 + np.sin(f):.3f},1"
                                                for f in range(60) for p in range(4)]
        victim.write_text("\n".join(rows))

        def load(p):
            tr = load_tracks(p)
            return np.asarray(tr.positions).tobytes()

        return victim, load, False
    raise ValueError(target)


def run_target(target: str, n: int, seed: int, out_file: Path) -> None:
    """In the subprocess: mutate ``n`` times, append one JSON line per outcome to ``out_file``."""
    import traceback

    from edgekd.errors import EdgekdError

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["EDGEKD_CACHE"] = str(work / "cache")
        victim, load, integrity = _setup(target, work)
        original = load(None if callable(victim) else victim)
        rng = np.random.default_rng(seed)
        with open(out_file, "a") as log:
            for k in range(n):
                path = victim(rng) if callable(victim) else victim
                good = path.read_bytes()
                path.write_bytes(mutate(good, rng))
                try:
                    result = load(path)
                    outcome = "ok" if result == original else ("silent" if integrity else "ok-content")
                    detail = ""
                except EdgekdError as exc:
                    outcome, detail = "error", exc.message[:160]
                    if "\n" in exc.message:
                        outcome = "traceback"  # a "one-line" error must be one line
                except Exception as exc:  # noqa: BLE001 - what the fuzzing is for
                    outcome = "traceback"
                    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:300]
                finally:
                    path.write_bytes(good)
                log.write(json.dumps({"target": target, "k": k, "outcome": outcome, "detail": detail}) + "\n")
                log.flush()


def fuzz(targets=TARGETS, n: int = 30, seed: int = 0, timeout_s: float = 600, workers: int = 2) -> list[dict]:
    """Every target in its own subprocess (``workers`` at a time); a process that dies counts as a crash."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda t: _fuzz_one(t, n, seed, timeout_s), targets))
    return [r for part in parts for r in part]


def _fuzz_one(target: str, n: int, seed: int, timeout_s: float) -> list[dict]:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "outcomes.jsonl"
        out.touch()
        code = f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); import fuzzing; " \
               f"fuzzing.run_target({target!r}, {n}, {seed}, __import__('pathlib').Path({str(out)!r}))"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        got = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        rows += got
        if proc.returncode != 0 or len(got) < n:
            rows.append({"target": target, "k": len(got), "outcome": "crash",
                         "detail": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:] if proc.stderr.strip() else ''}"})
    return rows


def summary(rows: list[dict]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["target"], {}).setdefault(r["outcome"], 0)
        out[r["target"]][r["outcome"]] += 1
    return out
