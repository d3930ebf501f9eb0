"""The paper's experiment families as data: ablation, Monte Carlo, compression sweep, ImageNet subset.

A *run* is one :class:`~edgekd.distill.config.CompressConfig` (export off). Runs are
enumerated deterministically from a family, a budget and a number of seeds; each has a
stable id and lives in ``ROOT/<family>/<run-id>/``. A run whose ``report.json`` exists is
finished and never repeated, so the same command resumes an interrupted experiment, and
``--shard i/n`` (every run whose index % n == i) spreads it over processes or machines.

The teacher is trained once per budget into ``ROOT/teacher/<budget>/`` and shared by every
family (under a file lock so concurrent shards wait for it), or given with ``--teacher``;
every run loads it. Runs that use IG on the same training images share one IG cache
(``ROOT/ig-cache/<key>``), across families too.

Pairing: in ``ablation`` and ``sweep`` every method runs on the same seeds and the same
split, so methods are compared with paired tests. ``montecarlo`` trains each run on a
stratified 80 % of the budget's training set (``fraction_seed`` = the run's draw); the
validation split, the training set, the teacher and the IG maps stay fixed, and the test
set never changes. With ``paired_subsets`` (the default) every method
sees the same draws and the comparison is paired; with ``--unpaired`` each method gets
its own draws and Welch's test applies. :func:`aggregate` decides from the runs found,
not from the family name: runs are paired when both methods have exactly the same
(seed, split, subset and draw) keys.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgekd.errors import EdgekdError

# Compression factors of the reference table (DESIGN.md): features[:-L] for L = 3, 5, …, 17.
REFERENCE_CFS = (2.19, 4.12, 7.29, 12.04, 28.97, 54.59, 139.43, 1121.71)
ABLATION_METHODS = ("student", "kd", "ig", "at", "kd+ig", "kd+at", "ig+at", "kd+ig+at")
# The paper's ablation means over 10 runs at 4.12× (best-of-10 selection on the test set, see DESIGN.md).
REFERENCE_ABLATION = {"student": 91.18, "kd": 91.62, "ig": 91.35, "kd+ig": 92.02, "kd+at": 91.75, "kd+ig+at": 91.86}
BASELINE = "student"


@dataclass(frozen=True)
class Family:
    name: str
    methods: tuple[str, ...]
    cfs: tuple[float, ...]
    default_seeds: dict[str, int]  # budget → seeds (runs per method)
    train_fraction: float = 0.0  # montecarlo: fraction of the training pool drawn per run
    description: str = ""


FAMILIES: dict[str, Family] = {
    "ablation": Family("ablation", ABLATION_METHODS, (4.12,), {"cpu": 3, "paper": 5, "smoke": 2},
                       description="every mix of KD, IG, AT at one cf; same seeds across methods (paired)"),
    "montecarlo": Family("montecarlo", ("student", "kd", "ig", "kd+ig"), (4.12,), {"cpu": 5, "paper": 10, "smoke": 2},
                         train_fraction=0.8,
                         description="each run on its own stratified 80% of the training pool"),
    "sweep": Family("sweep", ("student", "kd", "ig", "kd+ig"), REFERENCE_CFS, {"cpu": 2, "paper": 3, "smoke": 1},
                    description="accuracy vs compression factor 2.19× … 1121.71×"),
}

# Budgets: overrides on top of a compress preset. "cpu" is sized for about an hour per family
# on 2 cores with two shards of one thread each (see estimate_seconds and benchmarks/experiments.md).
BUDGETS: dict[str, dict[str, Any]] = {
    "cpu": dict(preset="quick", overrides=dict(
        train_subset=2500, val_fraction=0.04, epochs=4, teacher_epochs=10, ig_steps=8, threads=1,
        batch_size=64, lr=2e-3, teacher_lr=2e-3, precise_bn_images=1024, device="cpu")),
    "paper": dict(preset="paper", overrides=dict(device="auto")),
    # Checks the plumbing end to end in a minute or two (e.g. on digits); its numbers mean nothing.
    "smoke": dict(preset="quick", overrides=dict(
        train_subset=300, val_fraction=0.1, epochs=2, teacher_epochs=2, ig_steps=4, threads=1, device="cpu")),
}
# Per-family changes to the cpu budget (the sweep has 4× as many runs).
CPU_FAMILY_OVERRIDES = {"sweep": dict(train_subset=1000, epochs=3)}


@dataclass
class Run:
    index: int
    id: str
    family: str
    method: str
    cf: float
    seed: int
    split_seed: int
    budget: str = "cpu"
    overrides: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise EdgekdError(f"bad shard {text!r}", "write it as i/n, e.g. 0/2 and 1/2 for two processes") from None
    if n < 1 or not 0 <= i < n:
        raise EdgekdError(f"bad shard {text!r}: need 0 ≤ i < n", "e.g. --shard 0/2 and --shard 1/2")
    return i, n


def select_shard(runs: list[Run], shard: tuple[int, int]) -> list[Run]:
    i, n = shard
    return [r for r in runs if r.index % n == i]


def budget_overrides(family: str, budget: str, extra: dict | None = None) -> tuple[str, dict]:
    if budget not in BUDGETS:
        raise EdgekdError(f"unknown budget {budget!r}", f"choose one of: {', '.join(BUDGETS)}")
    b = BUDGETS[budget]
    overrides = dict(b["overrides"])
    if budget == "cpu":
        overrides.update(CPU_FAMILY_OVERRIDES.get(family, {}))
    overrides.update(extra or {})
    return b["preset"], overrides


def enumerate_runs(family: str, seeds: int | None = None, budget: str = "cpu", cfs: list[float] | None = None,
                   methods: list[str] | None = None, paired_subsets: bool = True,
                   overrides: dict | None = None) -> list[Run]:
    """All runs of a family in a fixed order (cf, then seed, then method)."""
    if family not in FAMILIES:
        raise EdgekdError(f"unknown experiment family {family!r}", f"choose one of: {', '.join(FAMILIES)}")
    from edgekd.distill.config import parse_method

    fam = FAMILIES[family]
    _, overrides = budget_overrides(family, budget, overrides)
    n = seeds if seeds is not None else fam.default_seeds[budget]
    if n < 1:
        raise EdgekdError(f"--seeds/--runs must be ≥ 1, got {n}")
    methods = list(methods or fam.methods)
    for m in methods:
        parse_method(m)
    runs: list[Run] = []
    for cf in (cfs or fam.cfs):
        for s in range(n):
            for mi, method in enumerate(methods):
                if fam.train_fraction:
                    # Paired: draw k is the same images for every method; unpaired: each method its own draws.
                    split_seed = s if paired_subsets else 1000 * (mi + 1) + s
                    seed = split_seed
                    run_id = f"{method.replace('+', '-')}_cf{cf:g}_draw{split_seed}"
                else:
                    split_seed, seed = 0, s
                    run_id = f"{method.replace('+', '-')}_cf{cf:g}_seed{seed}"
                runs.append(Run(len(runs), run_id, family, method, float(cf), seed, split_seed, budget, dict(overrides)))
    return runs


def code_version() -> dict:
    """The git commit of the edgekd source (with a dirty flag) or, outside a checkout, the package version."""
    import edgekd

    pkg = Path(edgekd.__file__).resolve().parent
    info = {"edgekd_version": edgekd.__version__}
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=pkg, capture_output=True, text=True, timeout=10)
        if head.returncode == 0:
            info["git_commit"] = head.stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=pkg, capture_output=True,
                                   text=True, timeout=10)
            info["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


@contextmanager
def file_lock(path: Path):
    """An exclusive advisory lock, so shards on one machine (or a shared disk) do not train twice."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_config(run: Run, root: Path, data: str, teacher: str):
    """The exact CompressConfig of one run."""
    from edgekd.distill.config import resolve_config

    preset, _ = budget_overrides(run.family, run.budget)
    ov = dict(run.overrides)
    fam = FAMILIES[run.family]
    # Monte Carlo: draw k trains on its own stratified fraction of the fixed training set; the
    # validation split, the training set itself and so the teacher and its IG maps stay fixed.
    split = (dict(split_seed=0, train_fraction=fam.train_fraction, fraction_seed=run.split_seed)
             if fam.train_fraction else dict(split_seed=run.split_seed))
    ov.update(data=data, method=run.method, cf=run.cf, seed=run.seed, **split, teacher=teacher,
              export=False, out=str(root / run.family / run.id), notes={"experiment": run.family, "run_id": run.id})
    return resolve_config(preset, None, ov)


def _teacher_config(budget: str, root: Path, data: str, extra: dict | None = None):
    """One teacher per budget, shared by every family (it never sees a validation or test image of any)."""
    from edgekd.distill.config import resolve_config

    preset, ov = budget_overrides("", budget, extra)
    return resolve_config(preset, None, {**ov, "data": data, "seed": 0, "split_seed": 0, "teacher": "",
                                         "export": False, "out": str(teacher_dir(root, budget))})


def teacher_dir(root: Path, budget: str) -> Path:
    return Path(root) / "teacher" / budget


def ensure_teacher(family: str, budget: str, root: Path, data: str, teacher: str | None, log=print,
                   show_progress: bool = False, overrides: dict | None = None) -> str:
    """The shared teacher: ``teacher`` if given, else ROOT/teacher/<budget>/teacher.pt (trained once)."""
    if teacher:
        if not Path(teacher).exists():
            raise EdgekdError(f"teacher not found: {teacher}", "pass a .pt/.safetensors file, or omit --teacher")
        return str(teacher)
    from edgekd.distill.pipeline import train_teacher

    cfg = _teacher_config(budget, root, data, overrides)
    path = Path(cfg.out) / "teacher.pt"
    with file_lock(Path(cfg.out).parent / f"{budget}.lock"):
        if not path.exists():
            log(f"training the teacher into {path} (once for every family of this budget)")
        info = train_teacher(cfg, show_progress=show_progress)
    log(f"teacher: {path} (val {info['val_acc']:.2f}%)")
    return str(path)


def _link_ig_cache(cfg, root: Path) -> Path:
    """Point OUT/ig-cache at a cache shared by all runs with the same teacher, images and IG steps."""
    key = hashlib.sha1(json.dumps([cfg.data, cfg.teacher, cfg.val_fraction, cfg.split_seed, cfg.subset_seed, cfg.train_subset,
                                   cfg.ig_steps]).encode()).hexdigest()[:12]
    shared = root / "ig-cache" / key  # shared across families: the ablation and Monte Carlo use the same images
    shared.mkdir(parents=True, exist_ok=True)
    link = Path(cfg.out) / "ig-cache"
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    if not link.exists() and not link.is_symlink():
        # Relative, so a results folder can be moved or copied between machines.
        link.symlink_to(os.path.relpath(shared.resolve(), link.parent.resolve()), target_is_directory=True)
    return shared


def execute_run(run: Run, root: Path, data: str, teacher: str,
                compress_fn: Callable | None = None, log=print, show_progress: bool = False) -> str:
    """Run one configuration unless its report.json exists. Returns "done", "skipped" or "busy"
    (another process holds this run: shards with different --seeds can overlap)."""
    import fcntl

    out = root / run.family / run.id
    cfg = run_config(run, root, data, teacher)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return "busy"
        return _execute_locked(run, out, cfg, root, compress_fn, log, show_progress)


RUNTIME_KEYS = ("threads", "device", "notes")  # may differ between resumptions without changing a result


def _execute_locked(run: Run, out: Path, cfg, root: Path, compress_fn, log, show_progress) -> str:
    if (out / "report.json").exists():
        done = json.loads((out / "run.json").read_text()).get("config", {}) if (out / "run.json").exists() else {}
        want = json.loads(json.dumps(cfg.to_dict()))
        changed = sorted(k for k in want if k not in RUNTIME_KEYS and done and done.get(k) != want[k])
        if changed:
            raise EdgekdError(f"{out} was finished with other settings ({', '.join(changed)})",
                              "use another --root for a different budget, or delete the old runs")
        return "skipped"
    from edgekd.distill.config import parse_method
    from edgekd.utils.io import write_json

    write_json(out / "run.json", {"run": run.to_dict(), "code": code_version(), "config": cfg.to_dict(),
                                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    if compress_fn is None:
        from edgekd.distill.pipeline import compress as compress_fn
    if "ig" in parse_method(run.method):
        shared = _link_ig_cache(cfg, root)
        from edgekd.distill.ig import IGCache

        if not IGCache(shared).complete:
            with file_lock(shared.parent / f"{shared.name}.lock"):
                compress_fn(cfg, show_progress=show_progress, log=log)
            return "done"
    compress_fn(cfg, show_progress=show_progress, log=log)
    return "done"


def run_family(family: str, data: str, seeds: int | None = None, budget: str = "cpu", root: str | Path = "runs/experiments",
               shard: str | None = None, teacher: str | None = None, cfs: list[float] | None = None,
               methods: list[str] | None = None, paired_subsets: bool = True, dry_run: bool = False, log=print,
               show_progress: bool = False, overrides: dict | None = None) -> dict:
    """Run (or with ``dry_run`` list) this shard's unfinished runs of a family; ``overrides`` change the budget."""
    root = Path(root)
    runs = enumerate_runs(family, seeds, budget, cfs, methods, paired_subsets, overrides)
    mine = select_shard(runs, parse_shard(shard))
    def is_finished(r):
        return (root / family / r.id / "report.json").exists()

    finished = [r for r in mine if is_finished(r)]
    # The estimate is for what is left of the whole family (all shards), plus the teacher if it is not trained yet.
    teacher_ready = bool(teacher) or (Path(_teacher_config(budget, root, data, overrides).out) / "teacher.pt").exists()
    left = sum(not is_finished(r) for r in runs)
    summary = {"family": family, "budget": budget, "runs_total": len(runs), "runs_in_shard": len(mine),
               "already_finished": len(finished), "runs_left": left,
               "estimate_s": estimate_seconds(family, budget, left, teacher_trained=teacher_ready),
               "runs": [r.id for r in mine]}
    if dry_run:
        return summary
    root.mkdir(parents=True, exist_ok=True)
    teacher_path = ensure_teacher(family, budget, root, data, teacher, log=log, show_progress=show_progress,
                                  overrides=overrides)
    counts = {"done": 0, "skipped": 0, "busy": 0}
    for k, run in enumerate(mine, 1):
        t = time.perf_counter()
        status = execute_run(run, root, data, teacher_path, log=log, show_progress=show_progress)
        counts[status] += 1
        log(f"[{k}/{len(mine)}] {run.id}: {status}" + (f" in {time.perf_counter() - t:.0f} s" if status == "done" else "")
            + (" (another process is running it)" if status == "busy" else ""))
    summary.update(ran=counts["done"], skipped=counts["skipped"], busy=counts["busy"])
    return summary


def estimate_seconds(family: str, budget: str, n_runs: int, cifar_train: int = 50000, cifar_test: int = 10000,
                     teacher_trained: bool = False) -> dict | None:
    """Rough CPU time for the cpu budget on shared CIFAR-10 (1 thread per process), from measured rates.

    Rates measured on this 2-core machine with two shards of one thread (ablation runs of 2026-11-25,
    benchmarks/experiments.md): a student training step ≈ 1.0 s per 64 images with its share of
    validation overhead, the teacher forward adds ≈ 0.4 s for KD/AT; a teacher step ≈ 1.0 s;
    IG ≈ 0.015 s per image-step; inference ≈ 10 GMAC/s (teacher 88 M, 4.12× student 59 M MACs
    per image). An estimate, not a measurement.
    """
    if budget != "cpu":
        return None
    preset, ov = budget_overrides(family, budget)
    n_train, epochs = ov["train_subset"], ov["epochs"]
    if FAMILIES[family].train_fraction:
        n_train = int(0.8 * n_train)
    n_val = int(cifar_train * ov["val_fraction"])
    steps = -(-n_train // 64) * epochs
    student = steps * (1.0 + 0.2)  # ≈ half the runs use the teacher (KD/AT)
    # Student on val each epoch (after BN stats on precise_bn_images) and on val + test once; the
    # teacher's val/test scores are cached across runs.
    evals = ((n_val + ov["precise_bn_images"]) * epochs * 59e6 + (n_val + cifar_test) * 59e6) / 10e9
    per_run = student + evals
    _, base = budget_overrides("", budget)  # the teacher is shared by all families: the base budget's
    teacher = -(-base["train_subset"] // 64) * base["teacher_epochs"] * 1.0 + n_val * base["teacher_epochs"] * 88e6 / 10e9
    if teacher_trained:
        teacher = 0
    # Once per training set (draws share the maps); an upper bound when the cache already holds them.
    ig = ov["train_subset"] * ov["ig_steps"] * 0.015 if n_runs else 0
    total = teacher + ig + n_runs * per_run
    return {"per_run_s": round(per_run), "teacher_s": round(teacher), "ig_s": round(ig),
            "total_cpu_s": round(total), "wall_s_two_shards": round(teacher + (ig + n_runs * per_run) / 2)}


# ───────────────────────────── aggregation ─────────────────────────────

def collect(family_dir: Path) -> list[dict]:
    rows = []
    for report_path in sorted(Path(family_dir).glob("*/report.json")):
        rep = json.loads(report_path.read_text())
        cfg = rep.get("config", {})
        rows.append({"run_id": report_path.parent.name, "method": rep["method"], "cf": float(cfg.get("cf", 0)),
                     "compression_factor": rep.get("compression_factor"), "seed": rep.get("seed"),
                     "split_seed": cfg.get("split_seed"), "subset_seed": cfg.get("subset_seed", -1),
                     "fraction_seed": cfg.get("fraction_seed", 0),
                     "train_subset": cfg.get("train_subset"),
                     "test_acc": rep["student"]["test_acc"], "val_acc": rep["student"]["val_acc"],
                     "best_epoch": rep["student"].get("best_epoch"), "teacher_test_acc": rep.get("teacher", {}).get("test_acc"),
                     "student_s": rep.get("timings", {}).get("student_s"), "data": rep["data"]["name"]})
    return rows


def _pair_key(row: dict) -> tuple:
    return (row["seed"], row["split_seed"], row.get("subset_seed", -1), row.get("fraction_seed", 0), row["train_subset"])


def analyse(rows: list[dict], baseline: str = BASELINE, metric: str = "test_acc") -> list[dict]:
    """Per (cf, method): summary, and a test against the baseline at the same cf (Holm over methods)."""
    from edgekd.distill.stats import compare, holm, summarize

    out = []
    for cf in sorted({r["cf"] for r in rows}):
        at_cf = [r for r in rows if r["cf"] == cf]
        methods = sorted({r["method"] for r in at_cf}, key=lambda m: (m != baseline, ABLATION_METHODS.index(m)
                                                                       if m in ABLATION_METHODS else 99, m))
        base = {_pair_key(r): r[metric] for r in at_cf if r["method"] == baseline}
        entries = []
        for m in methods:
            mine = {_pair_key(r): r[metric] for r in at_cf if r["method"] == m}
            # The paper's numbers are CIFAR-10 at 4.12×; beside anything else they would mislead.
            is_reference = abs(cf - 4.12) < 1e-6 and all(r["data"] == "cifar10" for r in at_cf)
            entry = {"cf": cf, "method": m, "summary": summarize(list(mine.values())).to_dict(),
                     "reference": REFERENCE_ABLATION.get(m) if is_reference else None, "comparison": None}
            if m != baseline and len(base) >= 2 and len(mine) >= 2:
                paired = set(mine) == set(base)
                keys = sorted(mine, key=str)
                a = [mine[k] for k in keys] if paired else list(mine.values())
                b = [base[k] for k in keys] if paired else list(base.values())
                entry["comparison"] = compare(a, b, paired=paired).to_dict()
            entries.append(entry)
        tested = [e for e in entries if e["comparison"]]
        for e, p in zip(tested, holm([e["comparison"]["p"] for e in tested])):
            e["comparison"]["p_holm"] = p
        out.extend(entries)
    return out


def analyse_across_cfs(rows: list[dict], baseline: str = BASELINE, metric: str = "test_acc") -> list[dict]:
    """Each method against the baseline over all compression factors at once, paired by (cf, seed, split):
    does the method help across the sweep? Works with one seed per cf. Holm over the methods."""
    from edgekd.distill.stats import compare, holm

    if len({r["cf"] for r in rows}) < 2:
        return []
    key = lambda r: (r["cf"], *_pair_key(r))  # noqa: E731
    base = {key(r): r[metric] for r in rows if r["method"] == baseline}
    out = []
    for m in dict.fromkeys(r["method"] for r in rows if r["method"] != baseline):
        mine = {key(r): r[metric] for r in rows if r["method"] == m}
        common = sorted(set(mine) & set(base))
        if len(common) < 2:
            continue
        c = compare([mine[k] for k in common], [base[k] for k in common], paired=True).to_dict()
        out.append({"method": m, "pairs": len(common), "cfs": sorted({k[0] for k in common}), "comparison": c})
    for e, p in zip(out, holm([e["comparison"]["p"] for e in out])):
        e["comparison"]["p_holm"] = p
    return out


def markdown_across_cfs(entries: list[dict]) -> str:
    if not entries:
        return ""
    lines = ["", f"Across compression factors (paired by cf and seed; Holm over methods): {BASELINE} vs each method", "",
             "| method | pairs | Δ vs student [95% CI] | test | p | p (Holm) | effect |", "|---|---|---|---|---|---|---|"]
    for e in entries:
        c = e["comparison"]
        lines.append(f"| {e['method']} | {e['pairs']} | {_fmt_difference(c)} | {c['test']} | {c['p']:.3g} | "
                     f"{c['p_holm']:.3g} | {c['effect_name']} = {_fmt(c['effect_size'])} |")
    return "\n".join(lines) + "\n"


def _fmt_difference(c: dict) -> str:
    """'+1.23 [-0.40, +2.86]': the mean difference and, where there is one, its 95% CI."""
    ci = c.get("diff_ci")
    return f"{c['mean_difference']:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")


def _fmt(x, digits=2):
    return "–" if x is None or x != x else f"{x:.{digits}f}"


def markdown_table(analysis: list[dict], title: str) -> str:
    lines = [f"### {title}", "",
             "| cf | method | n | test acc mean ± sd | 95% CI | paper (mean of 10) | Δ vs student [95% CI] | test | p | p (Holm) | effect |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in analysis:
        s, c = e["summary"], e["comparison"]
        row = [f"{e['cf']:g}×", e["method"], str(s["n"]), f"{_fmt(s['mean'])} ± {_fmt(s['sd'])}",
               f"[{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}]", _fmt(e["reference"])]
        if c:
            row += [_fmt_difference(c), c["test"], f"{c['p']:.3g}", f"{c['p_holm']:.3g}",
                    f"{c['effect_name']} = {_fmt(c['effect_size'])}"]
        else:
            row += ["–"] * 5
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def plot(analysis: list[dict], rows: list[dict], out_dir: Path) -> list[str]:
    """Box plot per method (each cf) and, with several cfs, accuracy vs cf with 95% CI bands (log x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    written = []
    cfs = sorted({r["cf"] for r in rows})
    for cf in cfs:
        methods = [e["method"] for e in analysis if e["cf"] == cf]
        data = [[r["test_acc"] for r in rows if r["cf"] == cf and r["method"] == m] for m in methods]
        fig, ax = plt.subplots(figsize=(1.2 * len(methods) + 2, 4))
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(range(1, len(methods) + 1), methods, rotation=30)
        for i, vals in enumerate(data, 1):
            ax.scatter([i] * len(vals), vals, s=12, alpha=0.6, color="k", zorder=3)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{len(data[0]) if data else 0} runs per method, cf {cf:g}×")
        fig.tight_layout()
        path = out_dir / f"box_cf{cf:g}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(str(path))
    if len(cfs) > 1:
        # Left: accuracy with its 95% CI band and every run as a dot (with 2 runs per point the t band is very wide,
        # the dots show what it rests on). Right: the paired differences to the Student (same cf and seed), the
        # quantity the tests are about.
        fig, (ax, ax_d) = plt.subplots(1, 2, figsize=(12, 4.4))
        colours = {}
        for m in dict.fromkeys(e["method"] for e in analysis):
            pts = sorted((e["cf"], e["summary"]) for e in analysis if e["method"] == m)
            xs = [p[0] for p in pts]
            line, = ax.plot(xs, [p[1]["mean"] for p in pts], marker="o", label=m)
            colours[m] = line.get_color()
            ax.fill_between(xs, [p[1]["ci_low"] for p in pts], [p[1]["ci_high"] for p in pts], alpha=0.15,
                            color=colours[m])
            runs = [(r["cf"], r["test_acc"]) for r in rows if r["method"] == m]
            ax.scatter([c for c, _ in runs], [a for _, a in runs], s=10, color=colours[m], alpha=0.7, zorder=3)
        ns = sorted({e["summary"]["n"] for e in analysis})
        n = str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
        ax.set_xscale("log")
        ax.set_xlabel("compression factor (teacher ÷ student parameters)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"mean, 95% CI band, runs as dots (n = {n} per point)", fontsize=10)
        ax.legend()
        key = lambda r: (r["cf"], *_pair_key(r))  # noqa: E731
        base = {key(r): r["test_acc"] for r in rows if r["method"] == BASELINE}
        for m in colours:
            if m == BASELINE:
                continue
            diffs = [(r["cf"], r["test_acc"] - base[key(r)]) for r in rows if r["method"] == m and key(r) in base]
            if not diffs:
                continue
            xs = sorted({c for c, _ in diffs})
            ax_d.plot(xs, [np.mean([d for c, d in diffs if c == x]) for x in xs], marker="o", color=colours[m], label=m)
            ax_d.scatter([c for c, _ in diffs], [d for _, d in diffs], s=10, color=colours[m], alpha=0.7, zorder=3)
        ax_d.axhline(0, color="k", lw=0.8)
        ax_d.set_xscale("log")
        ax_d.set_xlabel("compression factor")
        ax_d.set_ylabel("method − student, same seed (pp)")
        ax_d.set_title("paired differences to the Student (mean line, pairs as dots)", fontsize=10)
        if ax_d.lines[1:]:
            ax_d.legend()
        fig.tight_layout()
        path = out_dir / "accuracy_vs_cf.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(str(path))
    return written


def aggregate(family_dir: str | Path, plots: bool = True) -> dict:
    """results.json, results.csv (one row per run), results.md and plots in ``family_dir``."""
    from edgekd.utils.io import write_json

    family_dir = Path(family_dir)
    rows = collect(family_dir)
    if not rows:
        raise EdgekdError(f"no finished runs (*/report.json) in {family_dir}", "run the experiment first")
    analysis = analyse(rows)
    with open(family_dir / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    across = analyse_across_cfs(rows)
    md = markdown_table(analysis, f"{family_dir.name}: {rows[0]['data']}, {len(rows)} runs") + markdown_across_cfs(across)
    (family_dir / "results.md").write_text(md)
    figures = plot(analysis, rows, family_dir) if plots else []
    result = {"family_dir": str(family_dir), "runs": len(rows), "analysis": analysis, "across_cfs": across,
              "figures": figures, "code": code_version()}
    write_json(family_dir / "results.json", result)
    return {**result, "markdown": md}


# ───────────────────────────── ImageNet subset ─────────────────────────────

def load_imagenet_cifar10(folder: str | Path):
    """The ImageNet images whose class maps to CIFAR-10, resized to 32×32, CIFAR label order."""
    import numpy as np

    from edgekd.data.dataset import CIFAR10_CLASSES, ImageSet
    from edgekd.data.imagefolder import FileSource, decode_image, find_layout

    folder = Path(folder)
    src = FileSource(folder)
    layout = find_layout(src.names)
    by_class = layout.get("all") or layout.get("train") or {}
    unknown = set(by_class) - set(CIFAR10_CLASSES)
    if unknown:
        raise EdgekdError(f"{folder}: folders {sorted(unknown)} are not CIFAR-10 classes")
    items = [(n, CIFAR10_CLASSES.index(c)) for c in sorted(by_class) for n in sorted(by_class[c])]
    images = np.stack([decode_image(src.read(n), n, 32) for n, _ in items])
    return ImageSet(images, np.array([lab for _, lab in items]), CIFAR10_CLASSES,
                    {"source": str(folder), "files": len(items)})


def balanced_accuracy(labels, predictions, num_classes: int) -> float:
    """Mean per-class recall over the classes present (in percent)."""
    import numpy as np

    labels, predictions = np.asarray(labels), np.asarray(predictions)
    recalls = [float((predictions[labels == c] == c).mean()) for c in range(num_classes) if (labels == c).any()]
    return 100.0 * float(np.mean(recalls))


def evaluate_on_imagenet_subset(models_dir: str | Path, folder: str | Path, teacher: str | None = None,
                                out_dir: str | Path | None = None) -> dict:
    """Score every finished run's student in ``models_dir`` (and the teacher) on the full mapped set, no fine-tuning."""
    import numpy as np

    from edgekd.data.dataset import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD
    from edgekd.distill.stats import summarize
    from edgekd.distill.trainer import predict
    from edgekd.models.checkpoint import load_model
    from edgekd.utils.io import write_json

    images = load_imagenet_cifar10(folder)
    models_dir = Path(models_dir)
    entries = []
    candidates = []
    for p in sorted(models_dir.glob("*/student.pt")):
        if not (p.parent / "report.json").exists():
            continue
        rep = json.loads((p.parent / "report.json").read_text())
        if tuple(rep["data"]["classes"]) != CIFAR10_CLASSES or rep["data"]["name"] != "cifar10":
            raise EdgekdError(f"{p.parent} was trained on {rep['data']['name']}, not CIFAR-10",
                              "evaluate a family trained with --data ../shared/data/cifar10-png.zip")
        candidates.append((p.parent.name, p, rep["method"]))
        teacher = teacher or rep["teacher"].get("source")  # the teacher these students were distilled from
    teacher_path = Path(teacher) if teacher else models_dir / "teacher" / "teacher.pt"
    if teacher_path.exists():
        candidates.insert(0, ("teacher", teacher_path, "teacher"))
    if not candidates:
        raise EdgekdError(f"no trained models in {models_dir}", "point --root/--from at a finished ablation or sweep")
    for run_id, path, method in candidates:
        model, _ = load_model(path)
        pred = predict(model, images, CIFAR10_MEAN, CIFAR10_STD).argmax(1)
        entries.append({"run_id": run_id, "method": method,
                        "accuracy": 100.0 * float((pred == images.labels).mean()),
                        "balanced_accuracy": balanced_accuracy(images.labels, pred, 10)})
    by_method = {}
    for m in dict.fromkeys(e["method"] for e in entries):
        vals = [e for e in entries if e["method"] == m]
        by_method[m] = {"accuracy": summarize([e["accuracy"] for e in vals]).to_dict(),
                        "balanced_accuracy": summarize([e["balanced_accuracy"] for e in vals]).to_dict()}
    counts = np.bincount(images.labels, minlength=10).tolist()
    lines = [f"### ImageNet images mapped to CIFAR-10 ({len(images)} images, per class {counts}), no fine-tuning", "",
             "| model | n | accuracy mean ± sd | balanced accuracy mean ± sd |", "|---|---|---|---|"]
    for m, s in by_method.items():
        a, b = s["accuracy"], s["balanced_accuracy"]
        lines.append(f"| {m} | {a['n']} | {_fmt(a['mean'])} ± {_fmt(a['sd'])} | {_fmt(b['mean'])} ± {_fmt(b['sd'])} |")
    result = {"images": len(images), "per_class": counts, "source": str(folder), "models_dir": str(models_dir),
              "runs": entries, "by_method": by_method, "markdown": "\n".join(lines) + "\n", "code": code_version()}
    if out_dir:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / "results.json", result)
        (out_dir / "results.md").write_text(result["markdown"])
    return result
