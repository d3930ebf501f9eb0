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


class _DefaultRunGroup(TyperGroup):
    """``edgekd track VIDEO ...`` means ``edgekd track run VIDEO ...``: an unknown first word goes to ``run``."""

    default_command = "run"

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


track_app = typer.Typer(
    cls=_DefaultRunGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Track skin features (DFE, LK, SIFT, ORB, NCC): [bold]edgekd track VIDEO --points x,y[/], eval, train.",
    rich_markup_mode="rich",
)
app.add_typer(track_app, name="track")


@track_app.command("run")
def track_run(
    video: Path = typer.Argument(..., help="video file (mp4, avi, ...)"),
    points: List[str] = typer.Option(..., "--points", "-p", help="x,y (repeatable, or several separated by spaces); 'auto' = skin points of the largest face"),
    method: str = typer.Option("dfe", help="dfe | lk | sift | orb | ncc"),
    encoder: Optional[Path] = typer.Option(None, help="DFE encoder: .pt, .onnx or .tflite (default export/dfe-encoder/model.onnx)"),
    out: Path = typer.Option(Path("tracks.csv"), help="CSV: frame, time_s, point, x, y, ok (x,y empty when lost)"),
    overlay: Optional[Path] = typer.Option(None, help="also write the video with the tracked points drawn (.mp4)"),
    max_frames: Optional[int] = typer.Option(None, help="stop after this many frames"),
):
    """Track points through a video."""
    from edgekd.track.run import track_file

    r = track_file(video, points, method=method, encoder=encoder, out_csv=out, overlay=overlay, max_frames=max_frames, threads=1)
    typer.echo(f"{r['points']} points × {r['frames']} frames with {method}: {r['fps_tracking']:.1f} frames/s → {r['csv']}")
    for p, t in r["lost"].items():
        typer.echo(f"  point {p} lost at frame {t} (marked ok=0, no position, from then on)")
    if r["overlay"]:
        typer.echo(f"overlay → {r['overlay']}")


@track_app.command("eval")
def track_eval(
    data: Path = typer.Option(Path("../shared/data/faces"), help="face images (held-out subjects are used)"),
    methods: str = typer.Option("lk,ncc,sift,orb,dfe", help="comma-separated; surf is unavailable"),
    encoder: List[Path] = typer.Option([], "--encoder", help="DFE encoder file(s); repeat to compare formats/runtimes"),
    images: int = typer.Option(4, help="held-out faces to use"),
    frames: int = typer.Option(45, help="frames per sequence"),
    motions: Optional[str] = typer.Option(None, help="comma-separated subset of the motion suite"),
    out_dir: Path = typer.Option(Path("benchmarks/tracking"), help="results.json, results.csv, plots"),
    seed: int = 0,
):
    """Every method on ground-truth sequences (real faces, known motion) → table, JSON/CSV, plots."""
    import csv

    from edgekd.track.evaluate import evaluate, motion_table, plots, table
    from edgekd.track.run import default_encoder
    from edgekd.utils.io import write_json
    from edgekd.utils.system import machine_record

    wanted = [m.strip() for m in methods.split(",") if m.strip()]
    encoders = list(encoder) or ([default_encoder()] if default_encoder() else [])
    if "dfe" in wanted and not encoders:
        raise EdgekdError("dfe needs an encoder", "pass --encoder PATH or train one with: edgekd track train")
    from edgekd.track import create_tracker

    for m in wanted:  # fail early on unknown / unavailable methods
        if m != "dfe":
            create_tracker(m)
    res = evaluate(data, wanted, encoders, n_images=images, n_frames=frames,
                   motions=[m.strip() for m in motions.split(",")] if motions else None, seed=seed,
                   log=lambda s: typer.echo(s, err=True))
    res["machine"] = machine_record()
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "results.json", res)
    with open(out_dir / "results.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "motion", "n", "mean_px", "median_px", "p95_px", "failure_rate", "lost_rate", "fps"])
        for lab, r in res["methods"].items():
            for mot, s in [("all", r["overall"]), *r["per_motion"].items()]:
                w.writerow([lab, mot, s["n"], s["mean_px"], s["median_px"], s["p95_px"], s["failure_rate"], s["lost_rate"], r["fps"]])
    paths = plots(res, out_dir)
    typer.echo(table(res))
    typer.echo("\nmean px per motion:\n" + motion_table(res))
    typer.echo(f"\n→ {out_dir}/results.json, results.csv, " + ", ".join(p.name for p in paths))


@track_app.command("train")
def track_train(
    data: Path = typer.Option(Path("../shared/data/faces"), help="folder of face images and/or videos"),
    out: Path = typer.Option(Path("runs/dfe"), help="checkpoints, best model dfe_autoencoder.pt, history.json"),
    epochs: int = 6,
    train_crops: int = typer.Option(6000, help="31×31 crops cut from training subjects"),
    val_crops: int = typer.Option(1000, help="crops from held-out subjects (validation loss)"),
    batch_size: int = 32,
    lr: float = 2e-3,
    loss: str = typer.Option("gaussian", help="gaussian (weighted, DFE) | mse (plain, ablation)"),
    sigma: float = typer.Option(5.0, help="Gaussian weight σ in px"),
    seed: int = 0,
    threads: int = typer.Option(1, help="torch CPU threads"),
    resume: bool = typer.Option(False, help="continue from OUT/train_state.pt"),
):
    """Train the DFE autoencoder without labels on face crops."""
    from edgekd.track.train import TrainConfig, train

    if loss not in ("gaussian", "mse"):
        raise EdgekdError(f"unknown loss {loss!r}", "use gaussian or mse")
    cfg = TrainConfig(data=str(data), out=str(out), epochs=epochs, train_crops=train_crops, val_crops=val_crops,
                      batch_size=batch_size, lr=lr, sigma=sigma if loss == "gaussian" else None, seed=seed, threads=threads)
    r = train(cfg, resume=resume)
    typer.echo(f"best held-out loss {r['best_val_loss']:.5f} → {r['model']} ({r['seconds']:.0f}s)")



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
    tracker: str = typer.Option("dfe", help="Feature tracker for iBCG: dfe (falls back to lk, saying so, when no encoder is exported), lk, sift, orb, ncc."),
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
