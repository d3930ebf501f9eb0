"""How long the runs left will take, measured on this machine — never a hard-coded rate.

Finished runs in the root (any family, same budget settings) give each run's measured time
directly; for the kinds of run not seen yet, a few training and inference steps of that
student (and the teacher, for KD/AT/IG) are timed here with the budget's batch size, threads
and precision, and scaled by the run's steps and images. The result is an estimate, labelled
as one, with what it rests on.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from edgekd.distill.experiments.families import Run


def _run_key(run_or_cfg) -> tuple:
    return (run_or_cfg["variant"], run_or_cfg["cf"], bool(set(run_or_cfg["method"].split("+")) & {"kd", "at", "dist", "dkd"}))


def measured_runs(root: Path) -> dict[tuple, list[float]]:
    """Seconds per finished run (student training + evaluation; the shared teacher and IG maps excluded)."""
    out: dict[tuple, list[float]] = {}
    for rep_path in Path(root).glob("*/*/report.json"):
        try:
            rep = json.loads(rep_path.read_text())
            t = rep["timings"]
            seconds = t["total_s"] - t.get("teacher_s", 0) - t.get("ig_s", 0)
            notes = rep.get("config", {}).get("notes", {})
            key = _run_key({"variant": notes.get("variant", "truncated"), "cf": float(rep["config"]["cf"]),
                            "method": rep["method"]})
        except (OSError, ValueError, KeyError, TypeError):
            continue
        out.setdefault(key, []).append(float(seconds))
    return out


def _time_steps(model, teacher, cfg, shape, batch: int, steps: int = 3) -> tuple[float, float]:
    """(seconds per training step incl. teacher forward, seconds per image of inference)."""
    import torch

    from edgekd.distill.trainer import _autocast, pick_amp

    torch.set_num_threads(max(1, cfg.threads or torch.get_num_threads()))
    dev = torch.device("cpu")
    amp = pick_amp(cfg.amp, dev)
    model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, *shape).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))

    def step():
        with _autocast(dev, amp):
            logits = model(x)
            if teacher is not None:
                with torch.no_grad():
                    teacher(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    per_step = (time.perf_counter() - t0) / steps
    model.eval()
    with torch.no_grad(), _autocast(dev, amp):
        model(x)
        t0 = time.perf_counter()
        model(x)
        per_image = (time.perf_counter() - t0) / batch
    return per_step, per_image


def estimate_seconds(left: list[Run], root: Path, data: str, teacher: str | None, overrides: dict | None = None) -> dict:
    """{per_kind, total_cpu_s, wall_s_two_shards, basis} for the runs left (see the module docstring)."""
    from edgekd.distill.experiments.runner import run_config
    from edgekd.distill.pipeline import load_run_data, make_splits
    from edgekd.distill.recipes import student_batch_size
    from edgekd.models.sources import load_model

    measured = measured_runs(root)
    kinds: dict[tuple, list[Run]] = {}
    for r in left:
        kinds.setdefault(_run_key({"variant": r.variant, "cf": r.cf, "method": r.method}), []).append(r)
    per_kind, total, basis = {}, 0.0, {"measured": 0, "timed here": 0}
    data_cache = {}
    for key, runs in kinds.items():
        if key in measured:
            seconds = sum(measured[key]) / len(measured[key])
            basis["measured"] += len(runs)
            source = f"mean of {len(measured[key])} finished run(s)"
        else:
            cfg = run_config(runs[0], Path(root), data, teacher or "")
            if cfg.data not in data_cache:
                d = load_run_data(cfg, show_progress=False)
                data_cache[cfg.data] = (d, make_splits(d, cfg))
            d, splits = data_cache[cfg.data]
            student = load_model(arch=cfg.student_arch, kwargs={**cfg.student_kwargs, **(
                {"cf": cfg.cf} if cfg.student_arch == "student" and "blocks_removed" not in cfg.student_kwargs else {})}, num_classes=d.num_classes).model
            t_model = load_model(arch=cfg.teacher_arch, num_classes=d.num_classes).model if key[2] else None
            n_train = len(splits.train)
            batch = student_batch_size(cfg, n_train)  # batch_size 0: the recipe's own
            per_step, per_image = _time_steps(student, t_model, cfg, (3, *d.image_size), batch)
            steps = math.ceil(n_train / batch) * cfg.epochs
            evals = (len(splits.val_set) + cfg.precise_bn_images) * cfg.epochs + len(splits.val_set) + len(d.test)
            seconds = steps * per_step + evals * per_image
            basis["timed here"] += len(runs)
            source = f"{per_step:.2f} s/step × {steps} steps + {evals} images × {1000 * per_image:.1f} ms (timed here)"
        per_kind[f"{key[0]} cf{key[1]:g}{' +teacher' if key[2] else ''}"] = {"runs": len(runs), "per_run_s": round(seconds),
                                                                            "basis": source}
        total += seconds * len(runs)
    return {"per_kind": per_kind, "total_cpu_s": round(total), "wall_s_two_shards": round(total / 2), "basis": basis}
