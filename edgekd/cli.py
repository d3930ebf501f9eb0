"""The ``edgekd`` command line. Thin on purpose: parse, call a stage function, print.

Every stage is a plain function (``edgekd.distill.pipeline.compress``,
``edgekd.convert.export_model``, ``edgekd.bench.run_benchmark`` ...). Heavy imports
(torch, captum, onnx) happen inside the commands so that ``edgekd bench`` and the
heart-rate commands start on a device that has no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperGroup

from edgekd.errors import EdgekdError


class _FriendlyErrors(TyperGroup):
    """Turn user errors into one red line and exit code 2 instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgekdError as exc:
            typer.secho(f"error: {exc.message}", err=True, fg="red")
            if exc.hint:
                typer.secho(f"  → {exc.hint}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.secho("interrupted — finished work is saved; run the same command again to resume", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_FriendlyErrors,
    no_args_is_help=True,
    add_completion=False,
    help="Put accurate, small, fast models on edge devices: distil (IG + KD), export (ONNX/TFLite INT8), "
    "benchmark, and track skin features for heart rate.",
    rich_markup_mode="rich",
)


def main() -> None:
    app()


# ───────────────────────────── compression line ─────────────────────────────


# ──────────────────────────────── export ────────────────────────────────────


# ──────────────────────────────── bench ─────────────────────────────────────


# ──────────────────────────────── track ─────────────────────────────────────


# ────────────────────────────── heart rate ──────────────────────────────────


@app.command("heartrate")
def heartrate_cmd(
    video: str = typer.Argument(..., help="Video file, or an integer camera index (0) for live input."),
    method: str = typer.Option("fused", help="ibcg (head motion), rppg (skin colour) or fused (both, by quality)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write every window's estimate to this JSON file."),
    plot: Optional[Path] = typer.Option(None, help="Write trajectories, spectrum and rate over time to this PNG."),
    window: float = typer.Option(10.0, help="Analysis window (s)."),
    step: float = typer.Option(1.0, help="Seconds between estimates."),
    band: str = typer.Option("0.7,3.5", help="Pass band LOW,HIGH in Hz (0.7,3.5 = 42-210 bpm)."),
    roi: str = typer.Option("face", help="face (find it, use forehead/nose/cheeks) or full (the video is a skin crop)."),
    tracker: str = typer.Option("lk", help="Feature tracker for iBCG: dfe, lk, sift, orb, ncc."),
    encoder: Optional[Path] = typer.Option(None, help="DFE encoder (.onnx/.tflite); default: export/dfe-encoder/, INT8 first."),
    fps: Optional[float] = typer.Option(None, help="Override the frame rate the file states."),
    seconds: Optional[float] = typer.Option(None, help="Stop after this many seconds (needed for a camera)."),
):
    """Heart rate from a face video: head motion (iBCG), skin colour (rPPG), or both."""
    from edgekd.heartrate.pipeline import estimate_heart_rate, plot_report, public
    from edgekd.utils.io import write_json

    try:
        lo, hi = (float(v) for v in band.split(","))
    except ValueError:
        raise EdgekdError(f"--band must be LOW,HIGH in Hz, got {band!r}", "e.g. --band 0.7,3.5") from None
    if video.isdigit() and seconds is None:
        typer.echo("live camera: press Ctrl-C to stop (or pass --seconds)")

    def show(r):
        rate = "  --  " if r.bpm != r.bpm else f"{r.bpm:6.1f}"
        typer.echo(f"{r.t_end:7.1f} s  {rate} bpm  {r.quality:4s}  {r.source:9s}  SNR {r.snr_db:5.1f} dB"
                   + (f"  [{'; '.join(r.flags)}]" if r.flags else ""))

    report = estimate_heart_rate(
        video, method=method, window_s=window, step_s=step, band=(lo, hi), roi=roi, tracker=tracker,
        encoder=encoder, fps=fps, max_seconds=seconds, on_window=show,
    )
    for note in report["notes"]:
        typer.secho(f"note: {note}", err=True, fg="yellow")
    s = report["summary"]
    if s["bpm"] is None:
        typer.secho("no heart rate could be estimated", fg="red")
    else:
        typer.echo(f"heart rate: {s['bpm']:.1f} bpm ({s['quality']} quality, {s['good_windows']}/{s['windows']} good windows, "
                   f"sources {s['sources'] or '-'}); processed at {report['processing_fps']:.1f} frames/s")
        if s["quality"] != "good":
            typer.secho(f"warning: {s['message']}", fg="yellow")
    if json_out:
        write_json(json_out, public(report))
        typer.echo(f"wrote {json_out}")
    if plot:
        typer.echo(f"wrote {plot_report(report, plot)}")


# ───────────────────────────── experiments ──────────────────────────────────
