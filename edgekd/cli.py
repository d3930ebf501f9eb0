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


# ───────────────────────────── experiments ──────────────────────────────────
