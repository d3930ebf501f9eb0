"""Export candidates to INT8 once per architecture, and measure them with ``edgekd bench``'s protocol.

Exports live in ``<cache>/candidates/<input>-<classes>c/<key>/`` (``key`` = architecture and
arguments), beside a ``candidate.json`` with parameters, MACs and each file's size. Weights are
untrained and calibration inputs random: latency depends on the graph, not on weight values.

A latency table is what ``edgekd bench --json`` writes. Measured here it is one interleaved
run of every candidate file; on a device without torch, ``edgekd bench models/*/ --json t.json``
writes the same kind of file, and :func:`read_latency_table` joins it back to the candidates by
the folder each file sits in (its key).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from edgekd.errors import EdgekdError
from edgekd.formats import get_format
from edgekd.select.candidates import Candidate

DEFAULT_FORMATS = ("onnx-int8", "tflite-int8")
CALIBRATION_IMAGES = 16


def models_dir(input_size: tuple[int, int, int], num_classes: int, root: str | Path | None = None) -> Path:
    from edgekd.data.cache import cache_dir

    c, h, w = input_size
    return Path(root or cache_dir() / "candidates") / f"{c}x{h}x{w}-{num_classes}c"


@functools.lru_cache(maxsize=None)  # a survey checks dozens of records that share a few model files
def _architecture_source(arch: str) -> str:
    """The hash of the file that defines ``arch``: an edited model (a development checkout keeps its version
    number) invalidates its cached exports, including a recorded failure."""
    import hashlib
    import inspect

    from edgekd.models.registry import get_entry

    try:
        return hashlib.sha256(Path(inspect.getsourcefile(get_entry(arch).builder)).read_bytes()).hexdigest()[:16]
    except (OSError, TypeError):
        return ""


def _record_is_current(record: dict, formats: Iterable[str]) -> bool:
    import edgekd

    return (record.get("edgekd_version") == edgekd.__version__
            and record.get("source") == _architecture_source(record.get("arch", ""))
            and all(f in record.get("formats", {}) for f in formats))


def export_candidate(c: Candidate, folder: Path, input_size: tuple[int, int, int], num_classes: int,
                     formats: Iterable[str] = DEFAULT_FORMATS) -> dict:
    """Build, count and export one candidate (unless its folder already has these formats)."""
    from edgekd.utils.io import file_lock

    with file_lock(folder / ".lock"):  # two runs sharing the cache export a candidate once
        return _export_candidate(c, folder, input_size, num_classes, formats)


def _export_candidate(c: Candidate, folder: Path, input_size: tuple[int, int, int], num_classes: int,
                      formats: Iterable[str]) -> dict:
    import edgekd
    from edgekd.utils.io import read_json, write_json

    formats = [get_format(f).name for f in formats]
    record_path = folder / "candidate.json"
    if record_path.exists():
        try:
            record = read_json(record_path)
            if _record_is_current(record, formats):
                return record
        except (OSError, ValueError):
            pass  # a damaged record: export again
    import torch

    from edgekd.convert.export import export_model
    from edgekd.convert.spec import InputSpec
    from edgekd.models.complexity import count_macs, count_params
    from edgekd.select.candidates import build

    torch.manual_seed(0)
    model = build(c, num_classes).eval()
    shape = (1, *input_size)
    spec = InputSpec(shape=shape)
    calibration = np.random.default_rng(0).standard_normal((CALIBRATION_IMAGES, *input_size)).astype(np.float32)
    results = export_model(model, spec, folder, formats=formats, calibration=calibration, log=lambda _m: None)
    record = {**c.to_dict(), "edgekd_version": edgekd.__version__, "source": _architecture_source(c.arch),
              "input_size": list(input_size),
              "num_classes": num_classes, "params": count_params(model), "macs": count_macs(model, shape),
              "formats": {f: {k: results.get(f, {}).get(k) for k in ("status", "file", "bytes", "error")}
                          for f in formats}}
    write_json(record_path, record)
    return record


def export_candidates(candidates: list[Candidate], input_size: tuple[int, int, int], num_classes: int,
                      formats: Iterable[str] = DEFAULT_FORMATS, root: str | Path | None = None,
                      progress: Callable[[int, int, Candidate], None] | None = None) -> list[dict]:
    """Every candidate exported (cached); a failed format is recorded in the row, never skipped."""
    base = models_dir(input_size, num_classes, root)
    records = []
    for i, c in enumerate(candidates):
        if progress:
            progress(i, len(candidates), c)
        record = export_candidate(c, base / c.key, input_size, num_classes, formats)
        records.append({**record, "dir": str(base / c.key)})
    return records


def model_files(records: list[dict], formats: Iterable[str]) -> list[Path]:
    files = []
    for r in records:
        for f in formats:
            row = r["formats"].get(f, {})
            if row.get("status") == "ok":
                files.append(Path(r["dir"]) / row["file"])
    return files


def measure(records: list[dict], formats: Iterable[str] = DEFAULT_FORMATS, threads: int = 1, runs: int = 100,
            min_time_s: float = 1.0, warmup: int = 10, profile: str | None = None, progress=None) -> dict:
    """One interleaved ``edgekd bench`` run over every exported candidate file; its JSON dict."""
    from edgekd.bench import run_benchmark
    from edgekd.bench.report import run_dict

    files = model_files(records, formats)
    if not files:
        raise EdgekdError("no candidate exported in the requested formats", "see candidate.json for the errors")
    run = run_benchmark(files, profile=profile, threads=threads if profile is None else None, runs=runs,
                        min_time_s=min_time_s, warmup=warmup, formats=list(formats), progress=progress)
    return run_dict(run)


def read_latency_table(source: str | Path | dict) -> dict:
    """``(candidate key, format) → result`` from an ``edgekd bench --json`` file (or its dict).

    Raises a clear error for a file that is not one; a failed row is kept as failed."""
    if isinstance(source, dict):
        d, where = source, "latency table"
    else:
        where = str(source)
        try:
            d = json.loads(Path(source).read_text())
        except FileNotFoundError:
            raise EdgekdError(f"latency table not found: {source}",
                              "write one on the device with: edgekd bench models/*/ --json table.json") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise EdgekdError(f"{source} is not a JSON latency table ({exc})",
                              "pass the file `edgekd bench --json` wrote") from None
    if not isinstance(d, dict) or not isinstance(d.get("results"), list):
        raise EdgekdError(f"{where} is not an `edgekd bench --json` file (no results list)",
                          "pass the file `edgekd bench --json` wrote")
    table = {}
    for r in d["results"]:
        if not isinstance(r, dict) or "path" not in r:
            continue
        key = Path(str(r["path"])).parent.name
        fmt = r.get("format") or ""
        table[(key, fmt)] = {"status": r.get("status", "failed"), "error": r.get("error"),
                             "threads": r.get("threads"), "stats": r.get("stats") or {}}
    if not table:
        raise EdgekdError(f"{where} has no measured model files", "bench the candidate folders: edgekd bench models/*/")
    return {"table": table, "system": d.get("system", {}), "settings": d.get("settings", {}),
            "warnings": d.get("warnings", [])}


def latency_rows(records: list[dict], latency: dict, formats: Iterable[str]) -> list[dict]:
    """One row per candidate: size, params, MACs and, per format, p50/p90/N — or why it has none."""
    rows = []
    for r in records:
        row = {k: r[k] for k in ("key", "family", "arch", "kwargs", "params", "macs")}
        for f in formats:
            exp = r["formats"].get(f, {})
            got = latency["table"].get((r["key"], f))
            cell = {"bytes": exp.get("bytes")}
            if exp.get("status") != "ok":
                cell.update(status="export failed", error=exp.get("error"))
            elif got is None:
                cell.update(status="not measured")
            elif got["status"] != "ok":
                cell.update(status="bench failed", error=got.get("error"))
            else:
                st = got["stats"]
                cell.update(status="ok", p50_ms=st.get("p50_ms"), p90_ms=st.get("p90_ms"), min_ms=st.get("min_ms"),
                            n=st.get("n"), sd_ms=st.get("sd_ms"))
            row[f] = cell
        rows.append(row)
    return rows
