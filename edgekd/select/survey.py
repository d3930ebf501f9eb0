"""``edgekd students``: every candidate's parameters, MACs, INT8 size and latency in one table.

Measured here with ``edgekd bench``'s protocol (one interleaved run), or read from a table the
target device wrote, so a Raspberry Pi measures candidates without torch:

    edgekd students --export-only --out cand          # workstation: cand/models/<key>/*.int8.*
    edgekd bench cand/models/*/ --threads 1 --json pi.json   # on the Pi (edgekd[device])
    edgekd students --latency-table pi.json --out cand    # workstation: the table for the Pi
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

from edgekd.errors import EdgekdError
from edgekd.formats import get_format
from edgekd.select.candidates import Candidate, enumerate_candidates, is_paper_student
from edgekd.select.latency import (DEFAULT_FORMATS, export_candidates, latency_rows, measure, model_files,
                                   read_latency_table)
from edgekd.utils.io import atomic_write_bytes, write_json


def parse_input_size(text: str) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise EdgekdError(f"bad input size {text!r}", "write it as CxHxW, e.g. 3x32x32") from None
    if c < 1 or h < 8 or w < 8:
        raise EdgekdError(f"input size {text} is too small", "channels ≥ 1 and height, width ≥ 8")
    return c, h, w


def survey(families: str = "all", formats=DEFAULT_FORMATS, input_size=(3, 32, 32), num_classes: int = 10,
           threads: int = 1, runs: int = 100, min_time_s: float = 1.0, profile: str | None = None,
           latency_table: str | None = None, export_only: bool = False, out: str | Path = "runs/students",
           root=None, log=print, progress=None, candidates: list | None = None) -> dict:
    """Export (cached), measure or read, and write OUT/candidates.{json,csv}; returns the table.

    ``candidates`` (registry names or ``{"arch": ..., "kwargs": {...}}``) replace the families."""
    formats = [get_format(f).name for f in (formats.split(",") if isinstance(formats, str) else formats)]
    bad = [f for f in formats if f in ("torch",)]
    if bad:
        raise EdgekdError("candidates are compared as exported files", "use onnx, onnx-int8, tflite or tflite-int8")
    out = Path(out)
    source = "given" if candidates else families
    candidates = enumerate_candidates(families, candidates)
    log(f"{len(candidates)} candidates ({source}); exporting {', '.join(formats)} — cached per architecture")
    records = export_candidates(candidates, tuple(input_size), num_classes, formats, root=root, progress=progress)
    failed = sum(1 for r in records for f in formats if r["formats"][f]["status"] != "ok")
    if failed:
        log(f"{failed} export(s) failed: kept in the table as failures")
    if export_only:
        dest = out / "models"
        for r in records:
            target = dest / r["key"]
            target.mkdir(parents=True, exist_ok=True)
            for f in formats:
                row = r["formats"][f]
                if row["status"] == "ok":
                    shutil.copy2(Path(r["dir"]) / row["file"], target / row["file"])
            shutil.copy2(Path(r["dir"]) / "candidate.json", target / "candidate.json")
        write_json(out / "candidates.json", {"input_size": list(input_size), "num_classes": num_classes,
                                             "formats": formats, "records": records})
        return {"export_only": True, "models": str(dest), "records": records, "formats": formats}
    if latency_table:
        latency, source = read_latency_table(latency_table), f"table {latency_table}"
    else:
        measured = measure(records, formats, threads=threads, runs=runs, min_time_s=min_time_s, profile=profile)
        write_json(out / "latency.json", measured)
        latency, source = read_latency_table(measured), "measured here"
    rows = latency_rows(records, latency, formats)
    for r in rows:
        r["paper_student"] = is_paper_student(Candidate.make(r["arch"], r["kwargs"]))
    result = {"source": source, "input_size": list(input_size), "num_classes": num_classes, "formats": formats,
              "system": latency["system"], "settings": latency["settings"], "warnings": latency["warnings"],
              "rows": rows}
    write_json(out / "candidates.json", result)
    atomic_write_bytes(out / "candidates.csv", to_csv(rows, formats).encode())
    return result


def to_csv(rows: list[dict], formats) -> str:
    buf = io.StringIO()
    fields = ["key", "family", "arch", "kwargs", "params", "macs", "paper_student"]
    for f in formats:
        fields += [f"{f}_{k}" for k in ("status", "bytes", "p50_ms", "p90_ms", "min_ms", "n")]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        flat = {k: r.get(k) for k in fields[:7]}
        for f in formats:
            flat.update({f"{f}_{k}": r[f].get(k) for k in ("status", "bytes", "p50_ms", "p90_ms", "min_ms", "n")})
        w.writerow(flat)
    return buf.getvalue()


def plot_front(result: dict, path: str | Path, fmt: str, accuracy: dict | None = None) -> Path:
    """Latency of each candidate against MACs (or against ``accuracy[key]`` when given), by family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    fams = sorted({r["family"] for r in result["rows"]})
    for fam, marker in zip(fams, "osD^v"):
        pts = [r for r in result["rows"] if r["family"] == fam and r[fmt].get("status") == "ok"
               and (accuracy is None or r["key"] in accuracy)]
        ys = [accuracy[r["key"]] if accuracy else r["macs"] / 1e6 for r in pts]
        ax.scatter([r[fmt]["p50_ms"] for r in pts], ys, marker=marker, label=fam, alpha=0.8)
    for r in result["rows"]:
        if r.get("paper_student") and r[fmt].get("status") == "ok" and (accuracy is None or r["key"] in accuracy):
            y = accuracy[r["key"]] if accuracy else r["macs"] / 1e6
            ax.scatter([r[fmt]["p50_ms"]], [y], s=160, facecolors="none", edgecolors="k", label="paper's 4.12×")
    ax.set_xlabel(f"{fmt} latency p50, ms (1 image)")
    ax.set_ylabel("accuracy %" if accuracy else "M MACs")
    if not accuracy:
        ax.set_yscale("log")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


__all__ = ["survey", "plot_front", "parse_input_size", "model_files"]
