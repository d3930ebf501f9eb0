"""The benchmark protocol (single-stream, in the spirit of MLPerf).

Per model: session creation is timed, then the first (cold) call, then ``warmup``
untimed calls. Then all models take turns in blocks of ``block`` timed calls, in a
shuffled order each round, until every model has ``runs`` calls and ``min_time_s`` of
timed calls — so thermal drift, clock ramps and background load hit every model alike.
Each block starts with one untimed call: switching models evicts caches and lets the
previous runtime's spinning worker threads go idle, and that switch cost belongs to the
harness, not to the model. The garbage collector is paused while timing.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from edgekd.bench.inputs import check_card_fits, check_file_matches_card, load_card, make_feeds, parse_shape, resolve_shapes, _image_layout
from edgekd.bench.profile import load_profile
from edgekd.bench.runtimes import Session, cpu_affinity, import_runtime, open_session
from edgekd.bench.stats import summarize
from edgekd.bench.system import run_warnings, snapshot, system_record
from edgekd.errors import EdgekdError
from edgekd.formats import FORMATS, BY_NAME, format_of_file

DEFAULTS = {
    "threads": ["auto"],
    "batch": 1,
    "warmup": 10,
    "runs": 100,
    "min_time_s": 0.0,
    "block": 10,
    "pin_cpus": [],
    "formats": [f.name for f in FORMATS],
    "warn_above_c": None,
    "providers": ["cpu"],
    "provider_options": {},
    "delegates": ["xnnpack"],
    "tflite_runtimes": ["ai-edge-litert", "tflite-runtime"],
}


@dataclass
class ModelResult:
    path: str
    label: str
    format: str | None = None
    runtime: str | None = None
    backend: str | None = None
    threads: int | None = None
    batch: int = 1
    size_bytes: int | None = None
    status: str = "ok"  # ok | failed
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    create_ms: float | None = None
    cold_ms: float | None = None
    rss_increase_mb: float | None = None  # resident memory added by loading this model (psutil)
    input_source: str | None = None
    inputs: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def fail(self, message: str) -> None:
        self.status, self.error = "failed", message

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BenchRun:
    settings: dict
    system: dict
    before: dict
    after: dict
    warnings: list[str]
    results: list[ModelResult]
    peak_rss_mb: float | None
    wall_s: float

    @property
    def failed(self) -> list[ModelResult]:
        return [r for r in self.results if not r.ok]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["results"] = [r.to_dict() for r in self.results]
        return d


def _rss_mb() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process (all models together: they share it)."""
    try:
        import resource
    except ImportError:  # Windows
        try:
            import psutil

            return psutil.Process().memory_info().peak_wset / 2**20
        except (ImportError, AttributeError):
            return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _auto_threads() -> int:
    cores = cpu_affinity()
    return min(4, len(cores) if cores else (os.cpu_count() or 1))


def _label(path: Path) -> str:
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def expand_models(models: Sequence[str | os.PathLike], formats: Sequence[str]) -> list[Path]:
    """Files as given; a directory (an export folder) contributes its model files in ``formats`` order."""
    out: list[Path] = []
    for m in models:
        p = Path(m)
        if not p.is_dir():
            out.append(p)
            continue
        found = []
        # a device install has no torch: an export folder's model.pt is skipped there, not a failure
        try:
            has_torch = importlib.util.find_spec("torch") is not None
        except (ImportError, ValueError):
            has_torch = False
        for f in p.iterdir():
            try:
                fmt = format_of_file(f)
            except EdgekdError:
                continue
            if fmt.runtime == "torch" and not has_torch:
                continue
            if f.is_file() and fmt.name in formats:
                found.append((list(formats).index(fmt.name), f.name, f))
        out += [f for _, _, f in sorted(found)] or [p]  # an empty folder fails with a clear message later
    return out


@dataclass
class _Entry:
    result: ModelResult
    path: Path
    delegate: str | None
    session: Session | None = None
    feeds: list = field(default_factory=list)
    measured_ns: int = 0


def run_benchmark(
    models: Sequence[str | os.PathLike],
    *,
    profile: str | os.PathLike | dict | None = None,
    threads: Sequence[int | str] | int | None = None,
    batch: int | None = None,
    runs: int | None = None,
    min_time_s: float | None = None,
    warmup: int | None = None,
    block: int | None = None,
    providers: Sequence[str] | None = None,
    provider_options: dict | None = None,
    delegates: Sequence[str] | None = None,
    tflite_runtimes: Sequence[str] | None = None,
    pin_cpus: Sequence[int] | None = None,
    formats: Sequence[str] | None = None,
    input_shape: str | Sequence[int] | None = None,
    use_card: bool = True,
    warn_above_c: float | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    arch: str | None = None,
    arch_kwargs: dict | None = None,
) -> BenchRun:
    """Benchmark several models in one interleaved run. Never raises for one bad model:
    its result says ``failed`` with the reason and the others are measured."""
    t_start = time.perf_counter()
    say = progress or (lambda _msg: None)
    prof = load_profile(profile) if isinstance(profile, (str, os.PathLike)) else dict(profile or {})
    pb, po, pl = prof.get("bench", {}), prof.get("onnxruntime", {}), prof.get("litert", {})
    given = {
        "threads": [threads] if isinstance(threads, (int, str)) else threads,
        "batch": batch, "runs": runs, "min_time_s": min_time_s, "warmup": warmup, "block": block,
        "pin_cpus": pin_cpus, "formats": formats, "warn_above_c": warn_above_c,
        "providers": providers, "provider_options": provider_options,
        "delegates": delegates, "tflite_runtimes": tflite_runtimes,
    }  # fmt: skip
    from_profile = {
        **pb,
        "providers": po.get("providers"),
        "provider_options": po.get("provider_options"),
        "delegates": [pl["delegate"]] if pl.get("delegate") else None,
        "tflite_runtimes": pl.get("runtimes"),
    }
    cfg = {k: given[k] if given[k] is not None else from_profile.get(k) if from_profile.get(k) is not None else DEFAULTS[k] for k in DEFAULTS}
    for key in ("batch", "runs", "block"):
        if int(cfg[key]) < 1:
            raise EdgekdError(f"{key} must be at least 1 (got {cfg[key]})")
    if int(cfg["warmup"]) < 0 or float(cfg["min_time_s"]) < 0:
        raise EdgekdError("warmup and min_time_s cannot be negative")
    unknown = [f for f in cfg["formats"] if f not in BY_NAME]
    if unknown:
        raise EdgekdError(f"unknown format(s) {', '.join(unknown)}", f"choose from: {', '.join(BY_NAME)}")
    shape = parse_shape(input_shape) if isinstance(input_shape, str) else tuple(input_shape) if input_shape else None
    batch = int(cfg["batch"])
    cfg["arch"], cfg["arch_kwargs"] = arch, arch_kwargs  # for state_dict .pt files (eager PyTorch)
    rng = np.random.default_rng(seed)

    old_affinity = cpu_affinity()
    if cfg["pin_cpus"]:
        if not hasattr(os, "sched_setaffinity"):
            raise EdgekdError("CPU pinning needs Linux (os.sched_setaffinity)")
        try:
            os.sched_setaffinity(0, set(int(c) for c in cfg["pin_cpus"]))
        except (OSError, ValueError) as exc:
            raise EdgekdError(f"cannot pin to CPUs {list(cfg['pin_cpus'])} ({exc})", f"this process may use {old_affinity}") from None
    thread_counts = []
    for t in cfg["threads"]:
        try:
            n = _auto_threads() if str(t) == "auto" else int(t)
        except (TypeError, ValueError):
            raise EdgekdError(f"threads takes integers or 'auto', got {t!r}", "e.g. --threads 1,4 or --threads auto") from None
        if n < 1:
            raise EdgekdError(f"threads must be at least 1 (got {t})")
        thread_counts.append(n)
    thread_counts = list(dict.fromkeys(thread_counts))
    settings = {
        **{k: v for k, v in cfg.items() if k != "threads"},
        "threads": thread_counts,
        "input_shape": list(shape) if shape else None,
        "use_card": use_card,
        "seed": seed,
        "arch": arch,
        "arch_kwargs": arch_kwargs,
        "profile": prof.get("_path") or prof.get("device", {}).get("name"),
        "protocol": "single-stream; cold call, warm-up, then interleaved blocks in shuffled order, "
        "one untimed call per block, gc paused while timing",
    }

    entries: list[_Entry] = []
    for path in expand_models(models, cfg["formats"]):
        try:
            fmt = format_of_file(path) if path.is_file() else None
        except EdgekdError:
            fmt = None
        # A file that cannot even be opened gets one entry (and one message), not one per variant.
        variants = [(n, d) for n in thread_counts for d in (cfg["delegates"] if fmt and fmt.runtime == "litert" else [None])]
        for n, d in variants if fmt else [(thread_counts[0], None)]:
            r = ModelResult(path=str(path), label=_label(path), format=fmt.name if fmt else None,
                            runtime=fmt.runtime if fmt else None, threads=n, batch=batch)  # fmt: skip
            entries.append(_Entry(result=r, path=path, delegate=d))

    system = system_record()
    before = snapshot()
    try:
        # Exported models first, so a PyTorch model without a card can borrow their input shape.
        for e in sorted(entries, key=lambda e: e.result.runtime == "torch"):
            _load(e, entries, batch, int(cfg["warmup"]), shape, use_card, cfg, rng, say)
        _measure(entries, int(cfg["runs"]), float(cfg["min_time_s"]), int(cfg["block"]), rng, say)
    finally:
        if cfg["pin_cpus"] and old_affinity:
            os.sched_setaffinity(0, set(old_affinity))
        for e in entries:
            if e.session is not None:
                e.session.close()
    after = snapshot()
    for e in entries:
        r = e.result
        if r.ok and r.latencies_ms:
            r.stats = summarize(r.latencies_ms, batch)
    warns = run_warnings(before, after, len(old_affinity or []) or os.cpu_count(), cfg["warn_above_c"])
    usable = len(cpu_affinity() or []) or os.cpu_count() or 1
    if max(thread_counts) > usable:
        warns.append(f"{max(thread_counts)} threads on {usable} usable core(s): oversubscribed, so those rows measure waiting")
    return BenchRun(
        settings=settings,
        system=system,
        before=before,
        after=after,
        warnings=warns,
        results=[e.result for e in entries],
        peak_rss_mb=peak_rss_mb(),
        wall_s=time.perf_counter() - t_start,
    )


def _borrowed_shape(entries: list[_Entry], batch: int) -> tuple[tuple, str] | None:
    for other in entries:
        s = other.session
        if other.result.ok and s is not None and s.runtime != "torch" and len(s.inputs) == 1:
            shape = other.result.inputs[0]["shape"] if other.result.inputs else None
            if shape and _image_layout(shape) == "NCHW":
                return (batch, *shape[1:]), other.result.label
    return None


def _load(e: _Entry, entries, batch, warmup, shape, use_card, cfg, rng, say) -> None:
    r = e.result
    try:
        if e.path.is_dir():
            raise EdgekdError(f"{e.path}: no model files (.onnx, .tflite, .pt) in this folder")
        if not e.path.is_file():
            raise EdgekdError(f"{e.path}: file not found")
        if r.format is None:
            format_of_file(e.path)  # raises the message naming the supported suffixes
            raise EdgekdError(f"{e.path}: not a regular file")
        r.size_bytes = e.path.stat().st_size
        if r.size_bytes == 0:
            raise EdgekdError(f"{e.path.name}: the file is empty")
        say(f"loading {r.label} ({r.runtime}, {r.threads} thread{'s' if r.threads != 1 else ''})")
        import_runtime(r.runtime, cfg["tflite_runtimes"])
        rss0 = _rss_mb()
        t0 = time.perf_counter_ns()
        session = open_session(
            e.path, r.runtime, r.threads,
            providers=cfg["providers"], provider_options=_expand_options(cfg["provider_options"]),
            delegate=e.delegate or "xnnpack", tflite_runtimes=cfg["tflite_runtimes"],
            arch=cfg.get("arch"), arch_kwargs=cfg.get("arch_kwargs"),
        )  # fmt: skip
        r.create_ms = (time.perf_counter_ns() - t0) / 1e6
        rss1 = _rss_mb()
        r.rss_increase_mb = rss1 - rss0 if rss0 is not None and rss1 is not None else None
        e.session = session
        r.runtime, r.backend = session.runtime, session.backend
        r.notes += session.notes
        card = load_card(e.path, r.notes) if use_card else None
        check_file_matches_card(card, e.path)
        if session.inputs:
            shapes = resolve_shapes(session.inputs, batch, card, shape)
        elif shape is not None:
            shapes = [(batch, *shape[1:])]
        elif card is not None and card.size:
            h, w = card.size
            shapes = [(batch, 3, h, w) if card.layout != "NHWC" else (batch, h, w, 3)]
        else:
            borrowed = _borrowed_shape(entries, batch)
            if borrowed is None:
                raise EdgekdError(
                    f"{e.path.name}: a PyTorch model does not say what input it takes",
                    "pass --input-shape (e.g. 1,3,32,32), put a card.json next to it, or bench it with its exported model",
                )
            shapes = [borrowed[0]]
            r.notes.append(f"input shape {list(borrowed[0])} taken from {borrowed[1]}")
        check_card_fits(card, shapes, e.path)
        session.set_input_shapes(shapes)
        feeds, r.input_source = make_feeds(session.inputs, shapes, card, rng)
        r.inputs = [spec.to_dict() for spec in session.inputs]
        e.feeds = [session.to_native(f) for f in feeds]
        session.activate()
        t0 = time.perf_counter_ns()
        session.run(e.feeds[0])
        r.cold_ms = (time.perf_counter_ns() - t0) / 1e6
        for i in range(warmup):
            session.run(e.feeds[i % len(e.feeds)])
    except EdgekdError as exc:
        r.fail(exc.message + (f" — {exc.hint}" if exc.hint else ""))
    except Exception as exc:  # noqa: BLE001 - one broken model must not stop the others
        r.fail(f"{e.path.name}: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}")
    if not r.ok:
        say(f"failed: {r.label}: {r.error}")
        e.session = None


def _expand_options(options: dict | None) -> dict:
    # Paths like the TensorRT engine cache are written with ~ in profiles.
    return {
        provider: {k: os.path.expanduser(v) if isinstance(v, str) and v.startswith("~") else v for k, v in opts.items()}
        for provider, opts in (options or {}).items()
    }


def _measure(entries: list[_Entry], runs: int, min_time_s: float, block: int, rng, say) -> None:
    def done(e: _Entry) -> bool:
        return len(e.result.latencies_ms) >= runs and e.measured_ns >= min_time_s * 1e9

    active = [e for e in entries if e.result.ok and e.session is not None]
    if not active:
        return
    say(f"timing {len(active)} model(s): ≥{runs} calls" + (f" and ≥{min_time_s:g} s" if min_time_s else "") + " each, interleaved")
    gc.collect()
    gc.disable()
    try:
        while active:
            for i in rng.permutation(len(active)):
                e = active[i]
                try:
                    _block(e, runs, block)
                except Exception as exc:  # noqa: BLE001
                    e.result.fail(f"{e.path.name}: failed while timing: {type(exc).__name__}: {str(exc)[:200]}")
                    say(f"failed: {e.result.label}: {e.result.error}")
            active = [e for e in active if e.result.ok and not done(e)]
    finally:
        gc.enable()


def _block(e: _Entry, runs: int, block: int) -> None:
    lat = e.result.latencies_ms
    # Stop exactly at `runs` when the count is the limit; whole blocks when time is.
    n = min(block, runs - len(lat)) if len(lat) < runs else block
    session, feeds, k = e.session, e.feeds, len(lat)
    session.activate()
    session.run(feeds[k % len(feeds)])  # untimed: see the module docstring
    clock = time.perf_counter_ns
    for i in range(n):
        x = feeds[(k + i) % len(feeds)]
        t0 = clock()
        session.run(x)
        dt = clock() - t0
        lat.append(dt / 1e6)
        e.measured_ns += dt
