"""Presenting a run: terminal table, JSON, CSV and a latency-distribution plot."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from edgekd.bench.harness import BenchRun, ModelResult
from edgekd.errors import EdgekdError
from edgekd.utils.io import atomic_write_bytes, write_json

CSV_FIELDS = [
    "label", "path", "format", "runtime", "backend", "threads", "batch", "size_bytes", "status", "error",
    "create_ms", "cold_ms", "n", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "sd_ms", "min_ms", "max_ms",
    "throughput_per_s", "speedup_vs_first", "rss_increase_mb", "input_source", "notes",
]  # fmt: skip


def baseline(run: BenchRun) -> ModelResult | None:
    """Speed-ups are relative to the first model that ran."""
    return next((r for r in run.results if r.ok and r.stats), None)


def speedup(r: ModelResult, base: ModelResult | None) -> float | None:
    if base is None or not r.ok or not r.stats:
        return None
    return base.stats["p50_ms"] / r.stats["p50_ms"]


def _size(n: int | None) -> str:
    if n is None:
        return "—"
    if n < 1000:
        return f"{n} B"
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def print_table(run: BenchRun, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if not console.is_terminal:
        console.width = max(console.width, 160)  # a log file should not wrap every number
    base = baseline(run)
    table = Table(title="edgekd bench", title_justify="left")
    for col, kw in [
        ("model", {}), ("format", {}), ("runtime", {}), ("thr", {"justify": "right"}),
        ("size", {"justify": "right"}), ("load ms", {"justify": "right"}), ("cold ms", {"justify": "right"}),
        ("p50 ms", {"justify": "right"}), ("p90 ms", {"justify": "right"}), ("p99 ms", {"justify": "right"}),
        ("mean ± sd", {"justify": "right"}), ("N", {"justify": "right"}), ("speed-up", {"justify": "right"}),
    ]:  # fmt: skip
        table.add_column(col, **kw)
    for r in run.results:
        runtime = f"{r.runtime}:{r.backend}" if r.backend else (r.runtime or "—")
        if not r.ok:
            table.add_row(r.label, r.format or "—", runtime, str(r.threads or "—"), _size(r.size_bytes),
                          *["—"] * 7, "[red]failed[/red]")  # fmt: skip
            continue
        s, up = r.stats, speedup(r, base)
        table.add_row(
            r.label, r.format, runtime, str(r.threads), _size(r.size_bytes), _ms(r.create_ms), _ms(r.cold_ms),
            _ms(s["p50_ms"]), _ms(s["p90_ms"]), _ms(s["p99_ms"]), f"{_ms(s['mean_ms'])} ± {_ms(s['sd_ms'])}",
            str(s["n"]), f"{up:.2f}×" if up is not None else "—",
        )  # fmt: skip
    console.print(table)
    sysrec, before, after = run.system, run.before, run.after
    temps = lambda snap: ", ".join(f"{k} {v:.0f}°C" for k, v in list((snap.get("temperature_c") or {}).items())[:3]) or "n/a"  # noqa: E731
    console.print(
        f"[dim]{sysrec.get('board') or ''}{' · ' if sysrec.get('board') else ''}{sysrec['cpu']} · {sysrec['cores']} cores · {sysrec['arch']} {sysrec['bits']}-bit · {sysrec['os']} · "
        f"governor {before.get('governor') or 'n/a'} · temp {temps(before)} → {temps(after)} · "
        f"batch {run.settings['batch']} · speed-up = p50 of {base.label if base else '—'} ÷ p50[/dim]"
    )
    said = set()  # the same note or failure for each thread count / delegate is printed once
    for r in run.results:
        for line in [f"[yellow]note[/yellow] {r.label}: {n}" for n in r.notes] + (
            [f"[red]failed[/red] {r.label}: {r.error}"] if not r.ok else []
        ):
            if line not in said:
                said.add(line)
                console.print(line, highlight=False)
    for w in run.warnings:
        console.print(f"[yellow]warning[/yellow] {w}")


def rows(run: BenchRun) -> list[dict]:
    base = baseline(run)
    out = []
    for r in run.results:
        row = {k: getattr(r, k, None) for k in CSV_FIELDS if hasattr(r, k)}
        row.update({k: r.stats.get(k) for k in CSV_FIELDS if k in r.stats})
        row["speedup_vs_first"] = speedup(r, base)
        row["notes"] = " | ".join(r.notes)
        out.append(row)
    return out


def write_csv(run: BenchRun, path: str | Path) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows(run):
        writer.writerow(row)
    return atomic_write_bytes(path, buf.getvalue().encode())


def run_dict(run: BenchRun) -> dict:
    """What ``edgekd bench --json`` writes: every setting, the system record, all latencies, speed-ups."""
    d = run.to_dict()
    base = baseline(run)
    for rd, r in zip(d["results"], run.results):
        rd["speedup_vs_first"] = speedup(r, base)
    return d


def write_run_json(run: BenchRun, path: str | Path) -> Path:
    return write_json(path, run_dict(run))


def plot(run: BenchRun, path: str | Path, title: str | None = None) -> Path:
    """Latency distribution per model: box (quartiles, 1.5 IQR whiskers) over the individual calls."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EdgekdError("--plot needs matplotlib, which is not installed", "pip install matplotlib (or drop --plot)") from None
    ok = [r for r in run.results if r.ok and r.latencies_ms]
    if not ok:
        raise EdgekdError("nothing to plot: no model was measured")
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(ok) + 1.6))
    labels = [f"{r.label}\n{r.runtime}:{r.backend} · {r.threads} thr" for r in ok]
    data = [r.latencies_ms for r in ok][::-1]
    style = {"whis": 1.5, "showfliers": True, "flierprops": {"markersize": 2, "alpha": 0.4}, "widths": 0.6}
    try:
        ax.boxplot(data, orientation="horizontal", **style)
    except TypeError:  # matplotlib < 3.10
        ax.boxplot(data, vert=False, **style)
    ax.set_yticks(range(1, len(ok) + 1), labels[::-1], fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel(f"latency per call (ms, log scale), batch {run.settings['batch']}")
    sysrec = run.system
    ax.set_title(title or f"edgekd bench — {sysrec['cpu']} ({sysrec['arch']}, {sysrec['cores']} cores)", fontsize=9)
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
