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

_COMPRESS_FLAGS = dict(
    data=typer.Option(None, help="digits (bundled), cifar10 (download), a cifar-10-python.tar.gz, or an ImageFolder dir/.zip"),
    teacher=typer.Option(None, help="teacher weights (.pt/.safetensors); default: train one into OUT/teacher.pt"),
    cf=typer.Option(None, help="compression factor (teacher ÷ student parameters): 2.19, 4.12, 7.29, 12.04, …"),
    method=typer.Option(None, help="student | any mix of kd, ig, at joined by + (e.g. kd+ig)"),
    epochs=typer.Option(None, help="student epochs"),
    teacher_epochs=typer.Option(None, help="teacher epochs (when training one)"),
    ig_steps=typer.Option(None, help="Integrated-Gradients steps"),
    train_subset=typer.Option(None, help="train on a stratified subset of this many images (0 = all)"),
    lr=typer.Option(None, help="student learning rate"),
    seed=typer.Option(None, help="random seed of the student run"),
    out=typer.Option(None, help="run directory (checkpoints, IG cache, report.json)"),
    device=typer.Option(None, help="auto | cpu | cuda"),
    threads=typer.Option(None, help="CPU threads for torch (0 = default); 1 is fastest on a busy machine"),
)


def _collect(config: Optional[Path], preset: str, **flags):
    from edgekd.distill.config import resolve_config
    from edgekd.utils.config import load_toml

    toml = load_toml(config) if config else {}
    preset = toml.pop("preset", preset) if preset == "quick" else preset
    return resolve_config(preset, toml, {k: v for k, v in flags.items() if v is not None})


@app.command()
def compress(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML file with run settings (flags override it)"),
    preset: str = typer.Option("quick", help="quick (CPU, minutes) | paper (the paper's 100-epoch recipe, for a GPU)"),
    data: Optional[str] = _COMPRESS_FLAGS["data"],
    teacher: Optional[str] = _COMPRESS_FLAGS["teacher"],
    cf: Optional[float] = _COMPRESS_FLAGS["cf"],
    method: Optional[str] = _COMPRESS_FLAGS["method"],
    epochs: Optional[int] = _COMPRESS_FLAGS["epochs"],
    teacher_epochs: Optional[int] = _COMPRESS_FLAGS["teacher_epochs"],
    ig_steps: Optional[int] = _COMPRESS_FLAGS["ig_steps"],
    train_subset: Optional[int] = _COMPRESS_FLAGS["train_subset"],
    lr: Optional[float] = _COMPRESS_FLAGS["lr"],
    seed: Optional[int] = _COMPRESS_FLAGS["seed"],
    out: Optional[str] = _COMPRESS_FLAGS["out"],
    device: Optional[str] = _COMPRESS_FLAGS["device"],
    threads: Optional[int] = _COMPRESS_FLAGS["threads"],
    export: Optional[bool] = typer.Option(None, "--export/--no-export", help="export, gate and write the model card"),
    formats: Optional[str] = typer.Option(None, help="comma-separated export formats (default: all)"),
    name: Optional[str] = typer.Option(None, help="export/<name> folder (default from data, cf, method)"),
):
    """Distil a student from a teacher with KD and IG overlays, then export and verify it.

    With no arguments: the quick preset on scikit-learn's bundled digits (a few minutes on a CPU).
    Running the same command again reuses finished stages and resumes an interrupted one.
    """
    from edgekd.distill.pipeline import compress as run_compress

    cfg = _collect(config, preset, data=data, teacher=teacher, cf=cf, method=method, epochs=epochs,
                   teacher_epochs=teacher_epochs, ig_steps=ig_steps, train_subset=train_subset, lr=lr, seed=seed,
                   out=out, device=device, threads=threads, export=export, formats=formats, name=name)
    report = run_compress(cfg, log=lambda m: typer.echo(m))
    typer.echo(f"report: {Path(cfg.out) / 'report.json'}")
    if report.get("export", {}).get("dir"):
        typer.echo(f"exported: {report['export']['dir']}")


@app.command("train-teacher")
def train_teacher(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML file with run settings"),
    preset: str = typer.Option("quick", help="quick | paper"),
    data: Optional[str] = _COMPRESS_FLAGS["data"],
    teacher_epochs: Optional[int] = _COMPRESS_FLAGS["teacher_epochs"],
    train_subset: Optional[int] = _COMPRESS_FLAGS["train_subset"],
    seed: Optional[int] = _COMPRESS_FLAGS["seed"],
    out: Optional[str] = _COMPRESS_FLAGS["out"],
    device: Optional[str] = _COMPRESS_FLAGS["device"],
    threads: Optional[int] = _COMPRESS_FLAGS["threads"],
):
    """Train the CIFAR MobileNetV2 teacher into OUT/teacher.pt (validation-selected, resumable)."""
    from edgekd.distill.pipeline import train_teacher as run

    cfg = _collect(config, preset, data=data, teacher_epochs=teacher_epochs, train_subset=train_subset,
                   seed=seed, out=out, device=device, threads=threads)
    info = run(cfg)
    typer.echo(f"teacher: {info['source']} — val {info['val_acc']:.2f}%")


# ──────────────────────────────── export ────────────────────────────────────


# ──────────────────────────────── bench ─────────────────────────────────────


# ──────────────────────────────── track ─────────────────────────────────────


# ────────────────────────────── heart rate ──────────────────────────────────


# ───────────────────────────── experiments ──────────────────────────────────
