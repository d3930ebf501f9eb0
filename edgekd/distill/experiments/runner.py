"""Running a family: one run's exact config, the shared teacher and IG cache, locks, resumption.

Each run lives in ``ROOT/<family>/<run-id>/`` with its ``run.json`` (exact config, git commit)
and, once finished, ``report.json``. A finished run is never repeated, so the same command
resumes an interrupted experiment; a finished run made with other result-changing settings
is refused. The teacher is the shipped one where there is one for the data set (airbench on
CIFAR-10), else trained once per budget into ``ROOT/teacher/<budget>/`` (under a file lock, so
concurrent shards wait for it). Runs that use IG on the same training images share one IG
cache (``ROOT/ig-cache/<key>``), across families too. :func:`copy_records` keeps finished runs' records
(not their weights) where a checkout keeps them, so a family resumes on a fresh machine without redoing them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Callable

from edgekd.distill.experiments.families import (FAMILIES, VARIANTS, Run, budget_overrides, enumerate_runs,
                                                 parse_shard, select_shard)
from edgekd.errors import EdgekdError
from edgekd.utils.io import atomic_write, file_lock

FAILED = "failed.json"  # a run that diverged: finished, with no student
# what a finished run's result is, without its weights: enough for the runner to skip it and the report to count it
RECORD_FILES = ("run.json", "report.json", "robustness.json", FAILED)
RUNTIME_KEYS = ("threads", "device", "notes", "out")  # may differ between resumptions without changing a result
FILE_KEYS = ("data", "teacher")  # compared by content: the same file at another path is the same setting
# what only the export stage reads: no result of a run that does not export depends on them
EXPORT_KEYS = ("formats", "calib_images", "gate_pp", "robustness_images", "qat", "qat_steps", "int8_agreement",
               "name", "export_dir")


@functools.lru_cache(maxsize=64)
def _file_identity(path: str, size: int, mtime_ns: int) -> str:
    from edgekd.utils.io import sha256_file

    return f"sha256:{sha256_file(path)}"


def input_identity(value) -> str:
    """A file-valued setting by content (so a moved data set or another install of the shipped teacher
    still matches), anything else — a data set name, an empty teacher — as itself."""
    path = Path(str(value)) if value else None
    if path is not None and path.is_file():
        st = path.stat()
        return _file_identity(str(path.resolve()), st.st_size, st.st_mtime_ns)
    return str(value)


def changed_settings(done: dict, want: dict, default: dict, done_inputs: dict | None = None) -> list[str]:
    """Result-changing settings in which a finished run's config ``done`` differs from ``want``.

    A setting added after the run was made, left at its default, is what that run used; export settings do not
    matter to runs that do not export; file-valued
    settings compare by the content recorded when the run started (or, for runs from before that was
    recorded, by the old path's content if it is still there)."""
    done_inputs = done_inputs or {}
    exported = want.get("export", True) or done.get("export", default.get("export", True))
    changed = []
    for key in want:
        if key in RUNTIME_KEYS or (key in EXPORT_KEYS and not exported):
            continue
        old = done.get(key, default.get(key))
        if old == want[key]:
            continue
        if key in FILE_KEYS and done_inputs.get(key, input_identity(old)) == input_identity(want[key]):
            continue
        changed.append(key)
    return sorted(changed)


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


def run_config(run: Run, root: Path, data: str, teacher: str):
    """The exact CompressConfig of one run."""
    from edgekd.distill.config import resolve_config

    preset, _ = budget_overrides(run.family, run.budget)
    ov = dict(run.overrides)
    fam = FAMILIES[run.family]
    variant = VARIANTS[run.variant]
    # Monte Carlo: draw k trains on its own stratified fraction of the fixed training set; the
    # validation split, the training set itself and so the teacher and its IG maps stay fixed.
    split = (dict(split_seed=0, train_fraction=fam.train_fraction, fraction_seed=run.split_seed)
             if fam.train_fraction else dict(split_seed=run.split_seed))
    ov.update(data=data, method=run.method, cf=run.cf, seed=run.seed, **split, teacher=teacher, export=False,
              student_arch=variant.arch, student_kwargs=dict(variant.kwargs), out=str(root / run.family / run.id),
              notes={"experiment": run.family, "run_id": run.id, "variant": run.variant, "main": run.main})
    return resolve_config(preset, None, ov)


def teacher_dir(root: Path, budget: str) -> Path:
    return Path(root) / "teacher" / budget


def _teacher_config(budget: str, root: Path, data: str, extra: dict | None = None):
    """One teacher per budget, shared by every family (it never sees a validation or test image of any)."""
    from edgekd.distill.config import resolve_config

    preset, ov = budget_overrides("", budget, extra)
    return resolve_config(preset, None, {**ov, "data": data, "seed": 0, "split_seed": 0, "teacher": "",
                                         "export": False, "out": str(teacher_dir(root, budget))})


def ensure_teacher(family: str, budget: str, root: Path, data: str, teacher: str | None, log=print,
                   show_progress: bool = False, overrides: dict | None = None) -> str:
    """The shared teacher: ``teacher`` if given, the shipped one for this data, or ROOT/teacher/<budget>/teacher.pt."""
    if teacher:
        if not Path(teacher).exists():
            raise EdgekdError(f"teacher not found: {teacher}", "pass a model file, or omit --teacher")
        return str(teacher)
    cfg = _teacher_config(budget, root, data, overrides)
    from edgekd.distill.pipeline import load_run_data, shipped_teacher_for

    shipped = shipped_teacher_for(cfg, load_run_data(cfg, show_progress=False)) if cfg.pretrained_teacher else None
    if shipped is not None:
        log(f"teacher: the shipped {shipped.name} (no training needed)")
        return str(shipped)
    from edgekd.distill.pipeline import train_teacher

    path = Path(cfg.out) / "teacher.pt"
    with file_lock(Path(cfg.out).parent / f"{budget}.lock"):
        if not path.exists():
            log(f"training the teacher into {path} (once for every family of this budget)")
        info = train_teacher(cfg, show_progress=show_progress)
    log(f"teacher: {path} (val {info['val_acc']:.2f}%)")
    return str(path)


def _link_ig_cache(cfg, root: Path) -> Path:
    """Point OUT/ig-cache at a cache shared by all runs with the same teacher, images and IG steps."""
    key = hashlib.sha1(json.dumps([input_identity(cfg.data), input_identity(cfg.teacher), cfg.val_fraction,
                                   cfg.split_seed, cfg.subset_seed, cfg.train_subset, cfg.ig_steps,
                                   cfg.image_size]).encode()).hexdigest()[:12]
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


def _execute_locked(run: Run, out: Path, cfg, root: Path, compress_fn, log, show_progress) -> str:
    if (out / "report.json").exists() or (out / FAILED).exists():
        record = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
        want = json.loads(json.dumps(cfg.to_dict()))
        default = json.loads(json.dumps(type(cfg)().to_dict()))
        changed = (changed_settings(record["config"], want, default, record.get("inputs"))
                   if record.get("config") else [])
        if changed:
            raise EdgekdError(f"{out} was finished with other settings ({', '.join(changed)})",
                              "use another --root for a different budget, or delete the old runs")
        return "skipped"
    from edgekd.distill.config import parse_method
    from edgekd.utils.io import write_json

    write_json(out / "run.json", {"run": run.to_dict(), "code": code_version(), "config": cfg.to_dict(),
                                  "inputs": {k: input_identity(getattr(cfg, k)) for k in FILE_KEYS},
                                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    if compress_fn is None:
        from edgekd.distill.pipeline import compress as compress_fn
    if "ig" in parse_method(run.method):
        shared = _link_ig_cache(cfg, root)
        from edgekd.distill.ig import IGCache

        if not IGCache(shared).complete:
            with file_lock(shared.parent / f"{shared.name}.run.lock"):
                return _compress_or_record_divergence(run, out, cfg, compress_fn, log, show_progress)
    return _compress_or_record_divergence(run, out, cfg, compress_fn, log, show_progress)


def _compress_or_record_divergence(run: Run, out: Path, cfg, compress_fn, log, show_progress) -> str:
    """A run whose training diverges is a result (this method fails at this budget): it is recorded in
    ``failed.json``, counted by the report, never silently dropped or retried; the family goes on."""
    from edgekd.distill.trainer import TrainingDiverged
    from edgekd.utils.io import write_json

    try:
        compress_fn(cfg, show_progress=show_progress, log=log)
    except TrainingDiverged as exc:
        write_json(out / FAILED, {"run": run.to_dict(), "error": exc.message, "hint": exc.hint,
                                  "failed": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        log(f"{run.id}: training diverged ({exc.message}); recorded in {out / FAILED}, the family goes on")
        return "failed"
    return "done"


def run_family(family: str, data: str, seeds: int | None = None, budget: str = "cpu", root: str | Path = "runs/experiments",
               shard: str | None = None, teacher: str | None = None, cfs: list[float] | None = None,
               methods: list[str] | None = None, paired_subsets: bool = True, dry_run: bool = False, log=print,
               show_progress: bool = False, overrides: dict | None = None, competitors: bool = True,
               variants: list[str] | None = None, compress_fn: Callable | None = None) -> dict:
    """Run (or with ``dry_run`` list) this shard's unfinished runs of a family; ``overrides`` change the budget;
    ``compress_fn`` replaces :func:`edgekd.distill.pipeline.compress` (a custom pipeline)."""
    from edgekd.distill.experiments.estimate import estimate_seconds

    root = Path(root)
    runs = enumerate_runs(family, seeds, budget, cfs, methods, paired_subsets, overrides, competitors, variants)
    mine = select_shard(runs, parse_shard(shard))

    def is_finished(r):
        return (root / family / r.id / "report.json").exists() or (root / family / r.id / FAILED).exists()

    finished = [r for r in mine if is_finished(r)]
    left = [r for r in runs if not is_finished(r)]
    summary = {"family": family, "budget": budget, "runs_total": len(runs), "runs_in_shard": len(mine),
               "already_finished": len(finished), "runs_left": len(left), "runs": [r.id for r in mine]}
    if dry_run:
        summary["estimate_s"] = estimate_seconds(left, root, data, teacher, overrides) if left else None
        return summary
    root.mkdir(parents=True, exist_ok=True)
    teacher_path = ensure_teacher(family, budget, root, data, teacher, log=log, show_progress=show_progress,
                                  overrides=overrides)
    counts = {"done": 0, "skipped": 0, "busy": 0, "failed": 0}
    for k, run in enumerate(mine, 1):
        t = time.perf_counter()
        status = execute_run(run, root, data, teacher_path, compress_fn, log=log, show_progress=show_progress)
        counts[status] += 1
        log(f"[{k}/{len(mine)}] {run.id}: {status}" + (f" in {time.perf_counter() - t:.0f} s" if status == "done" else "")
            + (" (another process is running it)" if status == "busy" else ""))
    summary.update(ran=counts["done"], skipped=counts["skipped"], busy=counts["busy"], failed=counts["failed"])
    return summary


def copy_records(source: str | Path, dest: str | Path) -> list[str]:
    """Copy every finished run's records (:data:`RECORD_FILES`, not its weights) from one family folder to
    another: into a repository to keep them, and back into a fresh ``ROOT/<family>`` so the same command resumes
    the family without redoing them (the report then takes each run's corruption scores from its
    ``robustness.json``). Files the destination has are never overwritten; those it lacks are added (a run's
    corruption scores come later, from the report). Returns the runs something was copied for."""
    import shutil

    source, dest = Path(source), Path(dest)
    if not source.is_dir():
        raise EdgekdError(f"{source} is not a folder", "give a family folder, e.g. runs/experiments/ablation")
    if dest.exists() and not dest.is_dir():
        raise EdgekdError(f"{dest} is a file, not a folder", "give a folder for the records (it is created if missing)")
    copied = []
    for run_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        if not any((run_dir / name).is_file() for name in ("report.json", FAILED)):
            continue  # unfinished: its record would make the runner skip a run that has no result
        target = dest / run_dir.name
        missing = [name for name in RECORD_FILES if (run_dir / name).is_file() and not (target / name).exists()]
        if not missing:
            continue
        for name in missing:
            atomic_write(target / name, functools.partial(shutil.copyfile, run_dir / name))
        copied.append(run_dir.name)
    return copied
