"""The ``edgekd`` command line. Thin on purpose: parse, call a stage function, print.

Every stage is a plain function (``edgekd.distill.pipeline.compress``,
``edgekd.convert.export_model``, ``edgekd.bench.run_benchmark`` ...). Heavy imports
(torch, captum, onnx) happen inside the commands so that ``edgekd bench`` and the
heart-rate commands start on a device that has no torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperGroup

from edgekd.errors import EdgekdError
from edgekd.formats import QAT_MODES


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
    import sys

    from edgekd.utils.quiet import filtered_stderr

    verbose = any(a in ("--verbose", "-v") for a in sys.argv[1:])
    if not verbose:
        # TensorFlow-Lite / absl / XNNPACK log through C++ straight to the terminal; keep only errors.
        for var, value in (("TF_CPP_MIN_LOG_LEVEL", "3"), ("GLOG_minloglevel", "3"), ("ABSL_MIN_LOG_LEVEL", "3")):
            os.environ.setdefault(var, value)
        _quiet_third_party(False)
    with filtered_stderr(not verbose):
        app()


# ───────────────────────────── compression line ─────────────────────────────


def _default(name: str) -> str:
    """'quick X · paper Y' (or the single default) for --help, read from the presets themselves."""
    from edgekd.distill.config import PRESETS, CompressConfig

    base = getattr(CompressConfig(), name)
    values = {p: PRESETS[p].get(name, base) for p in PRESETS}
    if len(set(map(str, values.values()))) == 1:
        return f"[default: {base}]" if base not in ("", None) else ""
    return "[default: " + " · ".join(f"{p} {v}" for p, v in values.items()) + "]"


def _esc(text: str) -> str:
    """Square brackets are rich markup in --help; show them literally."""
    return text.replace("[", "\\[")


def _opt(name: str, text: str):
    return typer.Option(None, help=_esc(f"{text} {_default(name)}".strip()))


@app.command()
def compress(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML file with run settings (flags override it)"),
    preset: str = typer.Option("quick", help="quick (CPU, minutes, short-budget students) | cpu (CIFAR-10 students "
                                             "trained to convergence in under half an hour on 2 cores) | paper (the "
                                             "paper's 100-epoch recipe, for a GPU); a preset named in the TOML file "
                                             "applies unless this flag is given"),
    data: Optional[str] = _opt("data", "digits (bundled), cifar10 / cifar100 (download), or a path: ImageFolder dir/"
                                       ".zip/.tar.gz (train/ [val/] [test/] or flat <class>/), .csv of path,label, .npz"),
    image_size: Optional[int] = _opt("image_size", "resize every image to N×N (0 = keep their size)"),
    input_range: Optional[str] = typer.Option(None, help=_esc("0,1: the models take pixels/255 with no mean/std "
                                                              "[default: mean/std of the training split]")),
    teacher: Optional[str] = typer.Option(None, help=_esc("teacher model file: edgekd .pt, state_dict .pt/.safetensors "
                                                          "(with --teacher-arch), TorchScript or .pt2 [default: train "
                                                          "one into OUT/teacher.pt]")),
    teacher_arch: Optional[str] = _opt("teacher_arch", "teacher architecture: registry name (edgekd models) or "
                                                       "package.module:callable / file.py:callable"),
    teacher_kwargs: Optional[str] = typer.Option(None, help="teacher builder arguments, e.g. depth=18,width=64"),
    student_arch: Optional[str] = _opt("student_arch", "student architecture (registry name or package.module:callable)"),
    student_kwargs: Optional[str] = typer.Option(None, help="student builder arguments, e.g. width_mult=0.5,stem_stride=2"),
    cf: Optional[float] = _opt("cf", "the paper's truncated student: compression factor 2.19, 4.12, 7.29, … 1121.71"),
    student_init: Optional[str] = _opt("student_init", "random | teacher: start the student from the teacher's most "
                                                       "useful channels (a student shaped like the teacher, narrower) | "
                                                       "auto: from the teacher where the student allows it"),
    method: Optional[str] = _opt("method", "student | losses and ig joined by + (kd, at, dist, dkd, ig), e.g. kd+ig+at"),
    epochs: Optional[int] = _opt("epochs", "student epochs"),
    recipe: Optional[str] = _opt("recipe", "student recipe: plain (--lr, --batch-size, Adam/cosine) | fast (airbench's "
                                           "optimiser, schedule, batch and augmentation; --lr is not used)"),
    alpha: Optional[float] = _opt("alpha", "KD weight; CE gets 1 − alpha"),
    temperature: Optional[float] = _opt("temperature", "KD temperature"),
    mix: Optional[str] = _opt("mix", "input mixing: none | mixup | cutmix (the teacher scores the mixed images)"),
    teacher_targets: Optional[str] = _opt("teacher_targets", "online (the teacher scores every batch) | cached (it "
                                                             "scores each image and its mirror once; faster, KD only)"),
    teacher_tta: Optional[int] = _opt("teacher_tta", "KD targets from the teacher's test-time augmentation: 0 none, "
                                                     "1 mean over the image and its mirror, 2 also ±1 px translations"),
    teacher_epochs: Optional[int] = _opt("teacher_epochs", "teacher epochs (when training one)"),
    ig_steps: Optional[int] = _opt("ig_steps", "Integrated-Gradients steps"),
    train_subset: Optional[int] = _opt("train_subset", "train on a stratified subset of this many images (0 = all)"),
    lr: Optional[float] = _opt("lr", "student learning rate (plain recipe)"),
    lr_scale: Optional[float] = _opt("lr_scale", "fast recipe: multiply its learning rate by this (0 = the student's "
                                                 "own default from its registry entry)"),
    batch_size: Optional[int] = _opt("batch_size", "batch size of the student (and of a plain-recipe teacher); 0 = the recipe's own (plain 64, fast 1024); the fast recipe scales its learning rate with it"),
    amp: Optional[str] = _opt("amp", "off | bf16 | auto (bf16 where the CPU has AVX-512-BF16/AMX, or a GPU)"),
    seed: Optional[int] = _opt("seed", "random seed of the student run"),
    out: Optional[str] = _opt("out", "run directory (checkpoints, IG cache, report.json, export/)"),
    device: Optional[str] = _opt("device", "auto | cpu | cuda"),
    threads: Optional[int] = _opt("threads", "CPU threads for torch (0 = torch's default)"),
    export: Optional[bool] = typer.Option(None, "--export/--no-export", help=_esc("export, gate and write the model card [default: export]")),
    formats: Optional[str] = _opt("formats", "comma-separated export formats: onnx, onnx-int8, tflite, tflite-int8"),
    name: Optional[str] = typer.Option(None, help=_esc("export folder name [default: from data, student and method]")),
    gate_pp: Optional[float] = _opt("gate_pp", "fail if an exported INT8 model loses more than this many points of test accuracy"),
    robustness_images: Optional[int] = _opt("robustness_images", "test images scored again under JPEG, noise, blur, "
                                            "brightness and contrast for the card's robustness section (0 = none)"),
    qat: Optional[str] = _opt("qat", "quantisation-aware fine-tuning of the ONNX INT8 file: auto (when post-training "
                                     "INT8 agrees with PyTorch on less than --int8-agreement of validation) | on | off"),
    qat_steps: Optional[int] = _opt("qat_steps", "QAT steps (batch 128)"),
    int8_agreement: Optional[float] = _opt("int8_agreement", "top-1 agreement with PyTorch below which --qat auto "
                                                             "fine-tunes (0-1)"),
    latency_budget_ms: Optional[float] = _opt("latency_budget_ms", "choose the student by measured INT8 latency: the best "
                                              "proxy-scored candidate whose file runs within this many ms (p50), then "
                                              "check the shipped file meets it (0 = off)"),
    latency_format: Optional[str] = _opt("latency_format", "the format the budget is for: onnx-int8 | tflite-int8"),
    latency_table: Optional[str] = _opt("latency_table", "`edgekd bench --json` file from the target device (see "
                                                         "`edgekd students`); empty = measure on this machine"),
    latency_profile: Optional[str] = _opt("latency_profile", "bench profile (threads, runs) when measuring here"),
    latency_families: Optional[str] = _opt("latency_families", "candidate families: truncated, mobilenetv2, resnet, airbench"),
    latency_threads: Optional[int] = _opt("latency_threads", "runtime threads when measuring latency here"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show third-party logs (exporters, runtimes)"),
):
    """Distil a student from a teacher with KD and IG overlays, then export and verify it.

    With no arguments: the quick preset on scikit-learn's bundled digits, about 3 minutes on a 2-core CPU.
    Bring your own models with --teacher / --teacher-arch and --student-arch, your own data with --data.
    Running the same command again reuses finished stages and resumes an interrupted one.
    """
    from edgekd.distill.pipeline import compress as run_compress
    from edgekd.utils.config import parse_kwargs

    _quiet_third_party(verbose)
    cfg = _collect(config, preset, data=data, image_size=image_size, input_range=input_range, gate_pp=gate_pp,
                   robustness_images=robustness_images, qat=qat, qat_steps=qat_steps, int8_agreement=int8_agreement,
                   teacher=teacher,
                   teacher_arch=teacher_arch,
                   teacher_kwargs=parse_kwargs(teacher_kwargs, "--teacher-kwargs") if teacher_kwargs else None,
                   student_arch=student_arch,
                   student_kwargs=parse_kwargs(student_kwargs, "--student-kwargs") if student_kwargs else None,
                   cf=cf, student_init=student_init, method=method, epochs=epochs, recipe=recipe, alpha=alpha,
                   temperature=temperature, mix=mix,
                   teacher_targets=teacher_targets, teacher_tta=teacher_tta, teacher_epochs=teacher_epochs, ig_steps=ig_steps,
                   train_subset=train_subset, lr=lr, lr_scale=lr_scale, batch_size=batch_size, amp=amp, seed=seed, out=out, device=device,
                   threads=threads,
                   export=export, formats=formats, name=name, verbose=verbose or None,
                   latency_budget_ms=latency_budget_ms, latency_format=latency_format, latency_table=latency_table,
                   latency_profile=latency_profile, latency_families=latency_families,
                   latency_threads=latency_threads)
    report = run_compress(cfg, log=lambda m: typer.echo(m))
    if not report:
        return  # another torchrun rank: rank 0 reports
    typer.echo(f"report: {Path(cfg.out) / 'report.json'}")
    if report.get("export", {}).get("dir"):
        typer.echo(f"exported: {report['export']['dir']}")


def _collect(config: Optional[Path], preset: str, **flags):
    from edgekd.distill.config import resolve_config
    from edgekd.utils.config import load_toml

    toml = load_toml(config) if config else {}
    # A preset named in the TOML file applies unless --preset was given explicitly (non-default).
    file_preset = toml.pop("preset", None)
    if file_preset and preset == "quick":
        preset = file_preset
    return resolve_config(preset, toml, {k: v for k, v in flags.items() if v is not None})


def _quiet_third_party(verbose: bool) -> None:
    """Exporters and runtimes log pages through Python, absl and C++ (XNNPACK, oneDNN, TF-Lite): errors only."""
    if verbose:
        return
    import logging
    import warnings

    for var, value in (("TF_CPP_MIN_LOG_LEVEL", "3"), ("GLOG_minloglevel", "3"), ("ABSL_MIN_LOG_LEVEL", "3"),
                       ("TORCHINDUCTOR_DISABLE_PROGRESS", "1")):
        os.environ.setdefault(var, value)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|torchao|ai_edge|litert|onnx|absl).*")
    for name in ("absl", "torchao", "torch", "torch._dynamo", "torch.onnx", "onnxscript", "litert_torch", "jax",
                 "ai_edge_quantizer", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)


@app.command("train-teacher")
def train_teacher(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML file with run settings"),
    preset: str = typer.Option("quick", help="quick | cpu | paper"),
    recipe: Optional[str] = typer.Option(None, help=_esc("auto | fast (airbench's recipe, for --teacher-arch airbench) | "
                                                        "plain (--teacher-epochs/lr/optimizer) " + _default("teacher_recipe"))),
    data: Optional[str] = _opt("data", "data set name or path (as for compress)"),
    image_size: Optional[int] = _opt("image_size", "resize every image to N×N (0 = keep their size)"),
    teacher_arch: Optional[str] = _opt("teacher_arch", "teacher architecture (registry name or package.module:callable)"),
    teacher_kwargs: Optional[str] = typer.Option(None, help="teacher builder arguments, e.g. widths=[64,256,256]"),
    teacher_epochs: Optional[int] = _opt("teacher_epochs", "teacher epochs"),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", help=_esc(
        "the teacher's label smoothing; -1 = the recipe's own (fast: airbench's 0.2) "
        + _default("teacher_label_smoothing"))),
    train_subset: Optional[int] = _opt("train_subset", "train on a stratified subset of this many images (0 = all)"),
    amp: Optional[str] = _opt("amp", "off | bf16 | auto"),
    seed: Optional[int] = _opt("seed", "random seed"),
    out: Optional[str] = _opt("out", "run directory: OUT/teacher.pt, OUT/teacher.ckpt (resumable every epoch)"),
    device: Optional[str] = _opt("device", "auto | cpu | cuda"),
    threads: Optional[int] = _opt("threads", "CPU threads for torch (0 = torch's default)"),
):
    """Train a teacher into OUT/teacher.pt: validation-selected, resumable every epoch, test scored once.

    Example: [b]edgekd train-teacher --data cifar10 --teacher-arch airbench --recipe fast --teacher-epochs 14[/b]
    """
    from edgekd.distill.pipeline import train_teacher as run
    from edgekd.utils.config import parse_kwargs

    cfg = _collect(config, preset, data=data, image_size=image_size, teacher_recipe=recipe, teacher_arch=teacher_arch,
                   teacher_kwargs=parse_kwargs(teacher_kwargs, "--teacher-kwargs") if teacher_kwargs else None,
                   teacher_epochs=teacher_epochs, teacher_label_smoothing=label_smoothing, train_subset=train_subset,
                   amp=amp, seed=seed, out=out, device=device, threads=threads)
    info = run(cfg)
    if not info:
        return  # another torchrun rank: rank 0 reports
    typer.echo(f"teacher: {info['source']} — val {info['val_acc']:.2f}%, test {info['test_acc']:.2f}% "
               f"({info['test_acc_flip_tta']:.2f}% with flip TTA), {info.get('seconds', 0):.0f} s of training")


# ──────────────────────────────── export ────────────────────────────────────


def _floats(text: Optional[str], option: str) -> Optional[list[float]]:
    if not text:
        return None
    try:
        vals = [float(t) for t in text.split(",")]
    except ValueError:
        raise EdgekdError(f"{option} takes three numbers separated by commas, got {text!r}") from None
    if len(vals) != 3:
        raise EdgekdError(f"{option} takes three numbers (R,G,B), got {len(vals)}")
    return vals


@app.command("export")
def export_cmd(
    model: Path = typer.Argument(..., help="student.pt from `edgekd compress`, a state_dict .pt/.safetensors "
                                           "(with --arch), a TorchScript archive or a torch.export .pt2"),
    arch: Optional[str] = typer.Option(None, help="architecture of a plain state_dict: registry name or package.module:callable"),
    arch_kwargs: Optional[str] = typer.Option(None, help="builder arguments, e.g. cf=4.12 or width_mult=0.5"),
    data: Optional[str] = typer.Option(None, help="data to calibrate and check on (default: the one an edgekd model records)"),
    input_range: Optional[str] = typer.Option(None, help="0,1: the model takes pixels/255 with no mean/std"),
    mean: Optional[str] = typer.Option(None, help="R,G,B mean the model was trained with ([0,1] units)"),
    std: Optional[str] = typer.Option(None, help="R,G,B std the model was trained with"),
    image_size: Optional[int] = typer.Option(None, help="resize the data's images to N×N"),
    select_split: Optional[str] = typer.Option(None, help=_esc("split for the INT8 choices, never one the model "
                                                               "trained on: val | test [default: the run's "
                                                               "validation split, or val]")),
    formats: str = typer.Option("all", help="comma-separated: onnx, onnx-int8, tflite, tflite-int8 (or all)"),
    export_dir: str = typer.Option("export", help="parent folder; files go to EXPORT_DIR/NAME/"),
    name: Optional[str] = typer.Option(None, help=_esc("folder name [default: from data and architecture]")),
    gate_pp: float = typer.Option(1.0, help="fail if an exported model loses more than this many points of test accuracy"),
    calib_images: int = typer.Option(256, help="training images used to calibrate INT8 (never test images)"),
    robustness_images: int = typer.Option(1000, help="test images scored again under JPEG, noise, blur, brightness and "
                                                     "contrast for the card's robustness section (0 = none)"),
    qat: str = typer.Option("auto", help="quantisation-aware fine-tuning of the ONNX INT8 file by self-distillation: "
                                         "auto (when post-training INT8 agrees with PyTorch on less than "
                                         "--int8-agreement of the selection split) | on | off"),
    qat_steps: int = typer.Option(400, help="QAT steps (batch 128 training images)"),
    int8_agreement: float = typer.Option(0.997, help="top-1 agreement with PyTorch below which --qat auto fine-tunes"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show third-party logs"),
):
    """Export any classifier to ONNX / TFLite (fp32 + INT8), check each file's accuracy with its runtime, write the card.

    Example (a model trained elsewhere on [0,1] inputs):
    [b]edgekd export student.pt --arch student --arch-kwargs cf=4.12 --data cifar10 --input-range 0,1 --select-split test[/b]
    """
    from edgekd.convert.pipeline import export_file
    from edgekd.utils.config import parse_kwargs

    _quiet_third_party(verbose)
    if gate_pp < 0 or calib_images < 1 or robustness_images < 0 or qat_steps < 1:
        raise EdgekdError("--gate-pp and --robustness-images must be ≥ 0, --calib-images and --qat-steps ≥ 1")
    if qat not in QAT_MODES:
        raise EdgekdError(f"unknown --qat {qat!r}", f"use one of {', '.join(QAT_MODES)}")
    if not 0 < int8_agreement <= 1:
        raise EdgekdError(f"--int8-agreement {int8_agreement} is not a fraction", "use e.g. 0.997")
    result = export_file(model, data=data, arch=arch, arch_kwargs=parse_kwargs(arch_kwargs, "--arch-kwargs"),
                         input_range=input_range, mean=_floats(mean, "--mean"), std=_floats(std, "--std"),
                         image_size=image_size, select_split=select_split, formats=formats, export_dir=export_dir,
                         name=name, gate_pp=gate_pp, calib_images=calib_images,
                         robustness_images=robustness_images, qat=qat, qat_steps=qat_steps,
                         agreement_target=int8_agreement, log=typer.echo)
    typer.echo(f"exported: {result['dir']} (card.md, card.json)")


@app.command("models")
def models_cmd():
    """List the registered architectures with their default input size and what they are."""
    from edgekd.models.registry import get_default_cfg, get_entry, list_models

    for n in list_models():
        cfg = get_default_cfg(n)
        typer.echo(f"{n:20s} {str(tuple(cfg['input_size'])):14s} {cfg['description']}  "
                   f"(arguments: {', '.join(get_entry(n).arguments())})")


@app.command("students")
def students_cmd(
    families: str = typer.Option("all", help="candidate families, comma-separated: truncated, mobilenetv2, resnet, airbench"),
    formats: str = typer.Option("onnx-int8,tflite-int8", help="formats to export and time"),
    input_size: str = typer.Option("3x32x32", help="model input CxHxW"),
    classes: int = typer.Option(10, help="number of classes (the head's size)"),
    threads: int = typer.Option(1, "--threads", "-t", help="intra-op threads when measuring here"),
    runs: int = typer.Option(100, "--runs", "-n", help="timed calls per file (at least)"),
    min_time: float = typer.Option(1.0, "--min-time", help="and at least this many seconds per file"),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="measure here with this bench profile's settings"),
    latency_table: Optional[Path] = typer.Option(None, "--latency-table", help="read latencies from an `edgekd bench --json` file written on the device instead of measuring here"),
    export_only: bool = typer.Option(False, "--export-only", help="only write OUT/models/<candidate>/ for a device to bench"),
    out: Path = typer.Option(Path("runs/students"), help="folder for candidates.json/.csv, latency.json, the plot"),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="write OUT/candidates-<format>.png (latency vs MACs)"),
):
    """Candidate students: parameters, MACs, INT8 size and measured latency p50/p90 of each.

    Exports are cached per architecture (the first run takes a few minutes, later ones seconds).
    For a device without torch: [b]edgekd students --export-only --out cand[/b], copy cand/models to
    the device, run [b]edgekd bench cand/models/*/ --threads 1 --json table.json[/b] there, then
    [b]edgekd students --latency-table table.json --out cand[/b] here.
    """
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from edgekd.select.survey import parse_input_size, plot_front, survey

    _quiet_third_party(False)
    size = parse_input_size(input_size)
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("exporting candidates", total=None)

        def step(i, n, c):
            bar.update(task, total=n, completed=i, description=f"exporting {c.key}")

        result = survey(families, formats, size, classes, threads=threads, runs=runs, min_time_s=min_time,
                        profile=device, latency_table=str(latency_table) if latency_table else None,
                        export_only=export_only, out=out, log=lambda m: typer.echo(m, err=True), progress=step)
    if result.get("export_only"):
        typer.echo(f"wrote {result['models']}/<candidate>/ — on the device: "
                   f"edgekd bench {result['models']}/*/ --threads {threads} --json table.json")
        return
    table = Table(title=f"candidates ({result['source']})")
    for col in ("candidate", "params", "M MACs", *(f"{f} KiB · p50 · p90 ms" for f in result["formats"])):
        table.add_column(col, justify="left" if col == "candidate" else "right", no_wrap=col == "candidate")
    rows = sorted(result["rows"], key=lambda r: r[result["formats"][0]].get("p50_ms") or float("inf"))
    for r in rows:
        cells = []
        for f in result["formats"]:
            c = r[f]
            cells.append(f"{(c.get('bytes') or 0) / 1024:.0f} · {c['p50_ms']:.3f} · {c['p90_ms']:.3f}"
                         if c.get("status") == "ok" else c.get("status", "—"))
        table.add_row(r["key"] + (" (paper 4.12×)" if r.get("paper_student") else ""), f"{r['params']:,}",
                      f"{r['macs'] / 1e6:.1f}", *cells)
    Console().print(table)
    for w in result.get("warnings", []):
        typer.secho(f"warning: {w}", err=True, fg="yellow")
    typer.echo(f"wrote {out / 'candidates.json'} and {out / 'candidates.csv'}", err=True)
    if plot:
        for f in result["formats"]:
            typer.echo(f"wrote {plot_front(result, out / f'candidates-{f}.png', f)}", err=True)


# ──────────────────────────────── bench ─────────────────────────────────────


def _csv_list(text: Optional[str]) -> Optional[list[str]]:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _int_list(text: Optional[str], option: str) -> Optional[list[int]]:
    try:
        return [int(t) for t in _csv_list(text)] if text else None
    except ValueError:
        raise EdgekdError(f"{option} takes comma-separated integers, got {text!r}") from None


@app.command("bench")
def bench(
    models: List[Path] = typer.Argument(..., help="Model files (.onnx, .tflite, .pt) or export folders, compared in one run."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="Device profile: raspberry-pi-4, raspberry-pi-5, jetson-orin-nano, jetson-nano, x86-workstation."),
    profile: Optional[Path] = typer.Option(None, "--profile", help="A profile .toml instead of --device."),
    threads: Optional[str] = typer.Option(None, "--threads", "-t", help="Intra-op threads; a list like 1,2 runs each model at each count; 'auto' = usable cores (max 4)."),
    batch: Optional[int] = typer.Option(None, "--batch", "-b", help="Batch size (default 1, the edge case)."),
    runs: Optional[int] = typer.Option(None, "--runs", "-n", help="Timed calls per model (default 100)."),
    min_time: Optional[float] = typer.Option(None, "--min-time", help="Also time each model for at least this many seconds."),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="Untimed calls after the cold call (default 10)."),
    block: Optional[int] = typer.Option(None, "--block", help="Models take turns in blocks of this many calls (default 10)."),
    provider: Optional[str] = typer.Option(None, "--provider", help="ONNX Runtime providers in order, e.g. tensorrt,cuda,cpu (missing ones fall back, with a note)."),
    delegate: Optional[str] = typer.Option(None, "--delegate", help="LiteRT: xnnpack (default), none, a delegate .so; xnnpack,none compares both."),
    pin: Optional[str] = typer.Option(None, "--pin", help="Pin the process to these CPUs, e.g. 2,3 (Linux)."),
    formats: Optional[str] = typer.Option(None, "--formats", help="Formats taken from an export folder, in order (default: all)."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Input shape when the model does not fix it, e.g. 1,3,32,32."),
    no_card: bool = typer.Option(False, "--random-input", help="Ignore card.json samples; feed random input."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Architecture of a plain state_dict .pt (registry name or package.module:callable)."),
    arch_kwargs: Optional[str] = typer.Option(None, "--arch-kwargs", help="Its builder arguments, e.g. cf=4.12."),
    seed: int = typer.Option(0, "--seed", help="Seed for the block order and random inputs."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write every setting, the system record and all latencies here."),
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="Write one row per model here."),
    plot_out: Optional[Path] = typer.Option(None, "--plot", help="Write the latency distribution per model as a PNG (needs matplotlib)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the table."),
):
    """Latency of exported models on this device: several models in one interleaved run, no PyTorch needed.

    Example: [b]edgekd bench export/student/ --device raspberry-pi-5 --threads 1,4 --plot bench.png[/b]
    """
    from rich.console import Console

    from edgekd.bench import report, run_benchmark
    from edgekd.utils.config import parse_kwargs

    if device and profile:
        raise EdgekdError("pass --device or --profile, not both")
    console = Console(stderr=True)
    run = run_benchmark(
        models,
        profile=str(profile) if profile else device,
        threads=_csv_list(threads),
        batch=batch,
        runs=runs,
        min_time_s=min_time,
        warmup=warmup,
        block=block,
        providers=_csv_list(provider),
        delegates=_csv_list(delegate),
        pin_cpus=_int_list(pin, "--pin"),
        formats=_csv_list(formats),
        input_shape=input_shape,
        use_card=not no_card,
        seed=seed,
        arch=arch,
        arch_kwargs=parse_kwargs(arch_kwargs, "--arch-kwargs") or None,
        progress=None if quiet else (lambda msg: console.print(f"[dim]{msg}[/dim]")),
    )
    report.print_table(run, Console())
    if json_out:
        typer.echo(f"wrote {report.write_run_json(run, json_out)}", err=True)
    if csv_out:
        typer.echo(f"wrote {report.write_csv(run, csv_out)}", err=True)
    if plot_out:
        typer.echo(f"wrote {report.plot(run, plot_out)}", err=True)
    if run.failed:
        typer.secho(f"{len(run.failed)} of {len(run.results)} model(s) failed", err=True, fg="red")
        raise typer.Exit(1)


@app.command("bench-profiles")
def bench_profiles():
    """List the device profiles `edgekd bench --device NAME` knows, with their defaults and file."""
    from edgekd.bench.profile import list_devices, load_profile

    for name in list_devices():
        prof = load_profile(name)
        b, o, l = prof.get("bench", {}), prof.get("onnxruntime", {}), prof.get("litert", {})
        typer.echo(
            f"{name:18s} threads {b.get('threads')}  onnxruntime {o.get('providers')}  "
            f"litert {l.get('delegate')}  ({prof['_path']})"
        )


@app.command("predict")
def predict_cmd(
    model_dir: Path = typer.Argument(..., help="An export folder (card.json beside the model files), as `edgekd compress` writes."),
    images: Optional[List[Path]] = typer.Argument(None, help="Image files (png, jpg, ...): resized to the model's input."),
    video: Optional[str] = typer.Option(None, "--video", help="Classify every frame of a video file, or a camera: --video 0."),
    seconds: Optional[float] = typer.Option(None, help="--video: stop after this many seconds (a camera needs it)."),
    max_frames: Optional[int] = typer.Option(None, help="--video: stop after this many frames."),
    format: Optional[str] = typer.Option(None, "--format", help="onnx, onnx-int8, tflite or tflite-int8 (default: INT8 that "
                                         "passed the export gate; TFLite first on ARM, ONNX Runtime elsewhere)."),
    top_k: int = typer.Option(3, "--top-k", min=1, help="Labels listed per image."),
    threads: int = typer.Option(1, "--threads", min=1, help="Intra-op threads of the runtime."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write every prediction (label, probability, top-k) here."),
):
    """Classify images (or a video's frames) with an exported model on this device; no PyTorch needed.

    Example: [b]edgekd predict runs/compress/export/cifar10-airbench_x0_5-kd-ig cat.png dog.jpg[/b]
    """
    from edgekd.runtime import Classifier, classify_stream
    from edgekd.utils.io import write_json

    if bool(images) == (video is not None):
        raise EdgekdError("give image files or --video (a file or camera index), one of the two")
    clf = Classifier(model_dir, format=format, threads=threads, top_k=top_k)
    for warning in clf.warnings:
        typer.secho(f"warning: {warning}", err=True, fg="yellow")
    acc = f", test accuracy {clf.test_accuracy:.2f} % in its card" if clf.test_accuracy is not None else ""
    typer.echo(f"{clf.directory.name}: {clf.path.name} ({clf.format}{acc})", err=True)
    rows = []
    if video is None:
        for path, pred in zip(images, clf.predict(list(images))):
            rows.append({"image": str(path), **pred.to_dict()})
            others = ", ".join(f"{lab} {p:.2f}" for lab, p in pred.top_k[1:])
            typer.echo(f"{path}: {pred.label} ({pred.probability:.2f})" + (f"  [{others}]" if others else ""))
    else:
        for r in classify_stream(clf, video, seconds=seconds, max_frames=max_frames):
            pred = r["prediction"]
            rows.append({"frame": r["frame"], "time_s": r["time_s"], **pred.to_dict()})
            typer.echo(f"frame {r['frame']:5d}  {pred.label} ({pred.probability:.2f})  {r['frames_per_s']:.1f} frames/s")
    if json_out:
        write_json(json_out, {"model": str(model_dir), "file": clf.path.name, "format": clf.format,
                              "warnings": clf.warnings, "predictions": rows})
        typer.echo(f"wrote {json_out}", err=True)



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
    encoder: Optional[Path] = typer.Option(None, help="DFE encoder: .pt, .onnx or .tflite (default: the one edgekd ships, model.onnx)"),
    out: Path = typer.Option(Path("tracks.csv"), help="CSV: frame, time_s, point, x, y, ok (x,y empty when lost)"),
    overlay: Optional[Path] = typer.Option(None, help="also write the video with the tracked points drawn (.mp4)"),
    max_frames: Optional[int] = typer.Option(None, help="stop after this many frames"),
):
    """Track points through a video."""
    from edgekd.track.run import track_file

    r = track_file(video, points, method=method, encoder=encoder, out_csv=out, overlay=overlay, max_frames=max_frames, threads=1)
    if r["auto_face"]:
        x, y, w, h = r["auto_face"]
        typer.echo(f"--points auto: face at x={x} y={y}, {w}×{h} px" + ("  (DFE was trained on faces ~120–220 px wide)" if w < 100 and method == "dfe" else ""))
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
    images: int = typer.Option(4, help="test faces to use (held-out subjects, never used for training or validation)"),
    frames: Optional[int] = typer.Option(None, help="frames per sequence (default: 45 standard, 300 long)"),
    suite: str = typer.Option("standard", help="standard (45-frame motions) | long (≥ 300 frames: drift, moving light, "
                                               "perspective, motion blur, JPEG and video compression)"),
    variants: Optional[str] = typer.Option(None, help="reference modes to run every method in, e.g. anchored,chained "
                                                      "(dfe also has group); default: each method's usual mode"),
    motions: Optional[str] = typer.Option(None, help="comma-separated subset of the motion suite"),
    out_dir: Optional[Path] = typer.Option(None, help="results.json, results.csv, plots (default benchmarks/tracking, "
                                                      "benchmarks/tracking/long for the long suite)"),
    seed: int = 0,
    update_card: bool = typer.Option(True, help="write each encoder's error and INT8 gate verdict into the card.json/card.md next to it "
                                                "(only on the full motion suite)"),
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
    frames = frames or (300 if suite == "long" else 45)
    out_dir = out_dir or (Path("benchmarks/tracking/long") if suite == "long" else Path("benchmarks/tracking"))
    res = evaluate(data, wanted, encoders, n_images=images, n_frames=frames,
                   motions=[m.strip() for m in motions.split(",")] if motions else None, seed=seed,
                   log=lambda s: typer.echo(s, err=True), suite=suite,
                   variants=[v.strip() for v in variants.split(",") if v.strip()] if variants else None)
    res["machine"] = machine_record()
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "results.json", res)
    keys = ["n", "pooled_px", "mean_px", "median_px", "p95_px", "failure_rate", "lost_rate", "divergence_rate", "mean_frames_to_failure"]
    with open(out_dir / "results.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "motion", *keys, "fps"])
        for lab, r in res["methods"].items():
            for mot, s in [("all", r["overall"]), *((f"group:{g}", v) for g, v in r["per_group"].items()), *r["per_motion"].items()]:
                w.writerow([lab, mot, *[s[k] for k in keys], r["fps"]])
    paths = plots(res, out_dir)
    typer.echo(table(res))
    typer.echo("\npooled px (a miss = 5 px) per motion:\n" + motion_table(res, "pooled_px"))
    typer.echo(f"\n→ {out_dir}/results.json, results.csv, " + ", ".join(p.name for p in paths))
    if update_card and not motions and "dfe" in wanted and suite == "standard" and variants is None:
        from edgekd.track.export import record_tracking

        for folder in dict.fromkeys(Path(e).parent for e in encoders):
            card = record_tracking(folder, res)
            if card:
                typer.echo(f"→ {card} (tracking error and INT8 gate)")


@track_app.command("export")
def track_export(
    model: Path = typer.Option(Path("runs/dfe/dfe_autoencoder.pt"), help="trained DFE autoencoder (edgekd track train)"),
    out: Path = typer.Option(Path("export/dfe-encoder"), help="model.{pt,onnx,int8.onnx,int8-mixed.onnx,tflite,int8.tflite} + card"),
    data: Path = typer.Option(Path("../shared/data/faces"), help="face images; INT8 is calibrated on training subjects only"),
    radius: int = typer.Option(3, help="search radius r: the exported encoder takes (C+2r)² regions, C = its context (31, or 47 normalised); 3 was chosen on validation"),
):
    """Export the DFE encoder (ONNX/TFLite, fp32/INT8) with the project exporter and write its card."""
    from edgekd.models.checkpoint import load_model
    from edgekd.track.export import export_encoder, write_card

    _, info = load_model(model)
    r = export_encoder(model, out, data=data, radius=radius, log=typer.echo)
    train_meta = {k: v for k, v in (info.get("meta", {}).get("train") or {}).items() if k not in ("out", "data")}
    hist = info.get("meta", {}).get("history") or []
    if hist:
        train_meta["held_out_loss"] = round(min(h["val_loss"] for h in hist), 6)
    card = write_card(out, r, train_meta)
    typer.echo(f"→ {out} ({', '.join(Path(f).name for f in r['files'].values())}); card {card}")


@track_app.command("train")
def track_train(
    data: Path = typer.Option(Path("../shared/data/faces"), help="folder of face images and/or videos"),
    out: Path = typer.Option(Path("runs/dfe"), help="checkpoints, best model dfe_autoencoder.pt, history.json"),
    recipe: str = typer.Option("matched", help="matched (the shipped encoder: normalised + the matching term on "
                                               "JPEG-compressed regions) | normalised (the encoder normalises its "
                                               "input per pixel) | paper (the paper's plain autoencoder) | robust (normalised + "
                                               "a denoising target under light/camera/codec changes, small rotations and scalings)"),
    norm_radius: Optional[int] = typer.Option(None, help="photometric normalisation inside the encoder: box radius m in px "
                                                         "(0 = none; default: the recipe's)"),
    photometric: Optional[bool] = typer.Option(None, "--photometric/--no-photometric", help="denoising target under gain, "
                                               "colour, shading, noise, blur and JPEG changes (default: the recipe's)"),
    geometric: Optional[bool] = typer.Option(None, "--geometric/--no-geometric", help="inputs rotated ±10° and scaled ±8 % "
                                             "about the crop centre, target unwarped (default: the recipe's)"),
    epochs: int = 6,
    train_crops: int = typer.Option(6000, help="crops cut from training subjects"),
    val_crops: int = typer.Option(1000, help="crops from validation subjects (validation loss)"),
    val_frames: int = typer.Option(30, help="frames per validation tracking sequence; the tracking score picks the checkpoint (0: the loss does)"),
    colour_share: float = typer.Option(0.5, help="fraction of crops from colour images (the shared faces are mostly grey ORL)"),
    channels: Optional[str] = typer.Option(None, help="widths of the encoder's five 7×7 convs, the last = the encoding size "
                                           "(default: the recipe's, 16,32,32,64,128; 8,16,16,32,64: 1.4× faster in ONNX Runtime INT8, 0.02 px less accurate)"),
    match_weight: Optional[float] = typer.Option(None, help="weight of the matching term: in a JPEG-compressed search region "
                                                 "the true position's encoding must be the nearest to the reference "
                                                 "(0 = off; default: the recipe's)"),
    match_radius: int = typer.Option(2, help="candidate positions ±R px around the true one in the matching term"),
    match_temperature: float = typer.Option(0.02, help="temperature of the matching term's softmax over relative distances"),
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
                      batch_size=batch_size, lr=lr, sigma=sigma if loss == "gaussian" else None, seed=seed, threads=threads,
                      recipe=recipe, norm_radius=norm_radius, photometric=photometric, geometric=geometric,
                      colour_share=colour_share, val_frames=val_frames, channels=_int_list(channels, "--channels"),
                      match_weight=match_weight, match_radius=match_radius, match_temperature=match_temperature)
    r = train(cfg, resume=resume)
    typer.echo(f"best validation {r['selected_by']} {r['best_val_score']:.5f} → {r['model']} ({r['seconds']:.0f}s)")


# ────────────────────────────── heart rate ──────────────────────────────────


@app.command("heartrate")
def heartrate_cmd(
    video: Optional[str] = typer.Argument(None, help="Video file, or an integer camera index (0) for live input."),
    tracks: Optional[Path] = typer.Option(None, "--tracks", help="Feature trajectories instead of a video: the CSV "
                                          "`edgekd track --out` writes, an .npz (positions or x/y) or a MATLAB .mat (x, y)."),
    method: str = typer.Option("fused", help="ibcg (head motion), rppg (skin colour) or fused (both, by quality)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write every window's estimate to this JSON file."),
    plot: Optional[Path] = typer.Option(None, help="Write trajectories, spectrum and rate over time to this PNG."),
    window: float = typer.Option(10.0, help="Analysis window (s)."),
    step: float = typer.Option(1.0, help="Seconds between estimates."),
    band: str = typer.Option("0.7,3.5", help="Pass band LOW,HIGH in Hz (0.7,3.5 = 42-210 bpm)."),
    roi: str = typer.Option("face", help="face (find it, use forehead/nose/cheeks) or full (the video is a skin crop)."),
    tracker: str = typer.Option("dfe", help="Feature tracker for iBCG: dfe (the shipped encoder unless --encoder), lk, sift, orb, ncc."),
    encoder: Optional[Path] = typer.Option(None, help="DFE encoder: an .onnx/.tflite file or an export folder (its fastest file within the INT8 tracking gate); default: the one edgekd ships."),
    fps: Optional[float] = typer.Option(None, help="Frame rate: overrides the video's; for --tracks files without "
                                                   "timestamps it is required (or --duration). Timestamps in a file win."),
    duration: Optional[float] = typer.Option(None, help="--tracks: the recording's length in seconds (rate = frames / duration)."),
    reference: Optional[Path] = typer.Option(None, help="An ECG text export recorded with it: prints each window's error "
                                                        "against the R-peak rate (same start time assumed)."),
    seconds: Optional[float] = typer.Option(None, help="Stop after this many seconds (needed for a camera)."),
):
    """Heart rate from a face video — head motion (iBCG), skin colour (rPPG) or both — or from feature trajectories.

    Examples: [b]edgekd heartrate face.mp4[/b] · [b]edgekd heartrate --tracks tracks.csv[/b] ·
    [b]edgekd heartrate --tracks head_xy.mat --fps 25 --reference ecg.txt[/b]
    """
    from edgekd.heartrate.pipeline import compare_with_reference, estimate_from_tracks, estimate_heart_rate, plot_report, public
    from edgekd.utils.io import write_json

    try:
        lo, hi = (float(v) for v in band.split(","))
    except ValueError:
        raise EdgekdError(f"--band must be LOW,HIGH in Hz, got {band!r}", "e.g. --band 0.7,3.5") from None
    if (video is None) == (tracks is None):
        raise EdgekdError("give a video (or camera index) or --tracks FILE, one of the two")

    def show(r):
        rate = "  --  " if r.bpm != r.bpm else f"{r.bpm:6.1f}"
        typer.echo(f"{r.t_end:7.1f} s  {rate} bpm  {r.quality:4s}  {r.source:9s}  SNR {r.snr_db:5.1f} dB"
                   + (f"  [{'; '.join(r.flags)}]" if r.flags else ""))

    if tracks is not None:
        if plot:
            raise EdgekdError("--plot draws a video's analysis; for --tracks use --json")
        report = estimate_from_tracks(tracks, fps=fps, duration=duration, window_s=window, step_s=step, band=(lo, hi),
                                      on_window=show)
        typer.echo(f"frame rate {report['fps']:.2f}/s from {report['rate_source']}")
    else:
        if duration is not None:
            raise EdgekdError("--duration is for --tracks files; a video states its own length")
        if video.isdigit() and seconds is None:
            typer.echo("live camera: press Ctrl-C to stop (or pass --seconds)")
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
        speed = f"; processed at {report['processing_fps']:.1f} frames/s" if report.get("processing_fps") else ""
        typer.echo(f"heart rate: {s['bpm']:.1f} bpm ({s['quality']} quality, {s['good_windows']}/{s['windows']} good windows, "
                   f"sources {s['sources'] or '-'}){speed}")
        if s["quality"] != "good":
            typer.secho(f"warning: {s['message']}", fg="yellow")
    if reference is not None:
        cmp = compare_with_reference(report, reference)
        report["reference"] = cmp
        errs = [w["error_bpm"] for w in cmp["windows"] if w["quality"] == "good" and w["error_bpm"] is not None]
        typer.echo(f"ECG (lead {cmp['lead']}, {cmp['beats']} beats): {cmp['reference_bpm']:.1f} bpm; "
                   + (f"summary error {cmp['summary_error_bpm']:+.1f} bpm; " if cmp["summary_error_bpm"] is not None else "")
                   + (f"good windows: mean |error| {sum(abs(e) for e in errs) / len(errs):.1f} bpm over {len(errs)}" if errs
                      else "no good window to compare"))
    if json_out:
        write_json(json_out, public(report))
        typer.echo(f"wrote {json_out}")
    if plot:
        typer.echo(f"wrote {plot_report(report, plot)}")


@app.command("hrv")
def hrv_cmd(
    pulse: Path = typer.Argument(..., help="CSV of a pulse recorded by a camera: a 'time' column in ms and one or more "
                                 "channel columns (e.g. time,R,G,B: per-frame means of a fingertip or skin region)."),
    reference: Optional[Path] = typer.Option(None, help="RR intervals in ms from an ECG recorded at the same time "
                                             "(e.g. a chest strap's RR.txt): prints interval-by-interval errors."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write beats, intervals, the gate's verdict (and errors)."),
):
    """Beat-to-beat intervals and heart-rate variability (RMSSD, SDNN) from a camera pulse, or no number when the
    pulse does not allow it.

    Example: [b]edgekd hrv PPG.csv --reference RR.txt[/b]
    """
    from edgekd.heartrate.hrv import analyse_pulse, compare_with_rr, read_ppg_csv, read_rr
    from edgekd.utils.io import write_json

    t, channels = read_ppg_csv(pulse)
    result = analyse_pulse(t, channels)
    kept = int(result.valid.sum())
    if result.quality == "good":
        typer.echo(f"heart rate {result.bpm:.1f} bpm; RMSSD {result.rmssd_ms:.1f} ms; SDNN {result.sdnn_ms:.1f} ms "
                   f"({kept} of {len(result.ibi_ms)} intervals kept, channel {result.channel}, SNR {result.snr_db:.1f} dB)")
    else:
        typer.secho("no HRV from this recording: " + "; ".join(result.reasons), fg="yellow")
    out = {"source": str(pulse), **result.to_dict()}
    if reference is not None:
        cmp = compare_with_rr(result, read_rr(reference))
        out["reference"] = cmp
        if cmp["ibi_mae_ms"] is None:
            typer.echo("reference: the pulse's beats could not be aligned with the ECG's")
        else:
            typer.echo(f"reference: {cmp['covered']} of {cmp['intervals']} ECG intervals compared, mean |error| "
                       f"{cmp['ibi_mae_ms']:.1f} ms; ECG RMSSD {cmp['ecg_rmssd_ms']:.1f} ms, SDNN {cmp['ecg_sdnn_ms']:.1f} ms")
    if json_out:
        write_json(json_out, out)
        typer.echo(f"wrote {json_out}")


# ───────────────────────────── experiments ──────────────────────────────────

experiment_app = typer.Typer(
    cls=_FriendlyErrors,
    no_args_is_help=True,
    add_completion=False,
    help="The paper's experiments with honest statistics: ablation, montecarlo, sweep, imagenet-subset; "
    "then [bold]edgekd experiment report ROOT/FAMILY[/].",
    rich_markup_mode="rich",
)
app.add_typer(experiment_app, name="experiment")


def _float_list(text: Optional[str]) -> Optional[list[float]]:
    if not text:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise EdgekdError(f"bad --cf {text!r}", "give numbers separated by commas, e.g. 4.12 or 2.19,4.12") from None


def _experiment_command(family: str, count_flag: str, doc: str):
    def command(
        data: str = typer.Option("digits", help="digits, a cifar-10-python.tar.gz, or an ImageFolder dir/.zip (e.g. ../shared/data/cifar10-png.zip)"),
        seeds: Optional[int] = typer.Option(None, count_flag, help="runs per method (default depends on --budget)"),
        budget: str = typer.Option("cpu", help="cpu (reduced: 5,000 training images, 6 epochs, the shipped 93.7 % teacher; ~3 h for the ablation on 2 cores) | converged (the cpu preset's recipe on all 45,000 images, 16 epochs, airbench ×0.5 students near convergence; ~20 min a run per one-thread shard) | paper (the paper's protocol, for a GPU) | smoke (plumbing check, numbers mean nothing)"),
        shard: Optional[str] = typer.Option(None, help="i/n: run only the runs whose index % n == i"),
        root: Path = typer.Option(Path("runs/experiments"), help="results go to ROOT/<family>/<run-id>/"),
        teacher: Optional[Path] = typer.Option(None, help="teacher weights to share (default: train one per budget, shared by every family)"),
        cf: Optional[str] = typer.Option(None, help="compression factor(s), comma-separated (default: the family's)"),
        methods: Optional[str] = typer.Option(None, help="comma-separated subset of the family's methods"),
        unpaired: bool = typer.Option(False, help="montecarlo: give every method its own subset draws (Welch's test)"),
        competitors: bool = typer.Option(True, help="ablation: also train the other student shapes (MobileNetV2 ×0.5, ResNet-32)"),
        variants: Optional[str] = typer.Option(None, help="comma-separated student variants to run of the family's competitors (e.g. resnet20,airbench-x0.5); default: all"),
        dry_run: bool = typer.Option(False, "--dry-run", help="list the runs and the time estimate, run nothing"),
    ):
        from edgekd.distill.experiments import run_family

        s = run_family(family, data, seeds, budget, root, shard, str(teacher) if teacher else None, _float_list(cf),
                       _csv_list(methods), paired_subsets=not unpaired, dry_run=dry_run, log=typer.echo,
                       competitors=competitors, variants=_csv_list(variants))
        typer.echo(f"{family}: {s['runs_total']} runs in all, {s['runs_in_shard']} in this shard, "
                   f"{s['already_finished']} of them already finished")
        if dry_run:
            for run_id in s["runs"]:
                typer.echo(f"  {run_id}")
            e = s.get("estimate_s")
            if e:
                typer.echo(f"estimate for the {s['runs_left']} runs left: ~{e['wall_s_two_shards'] / 60:.0f} min with two "
                           f"shards ({e['total_cpu_s'] / 60:.0f} min of one shard; {e['basis']['measured']} from finished "
                           f"runs, {e['basis']['timed here']} from steps timed on this machine; the shared teacher and "
                           "IG maps are not counted) — an estimate, not a measurement")
                for kind, k in e["per_kind"].items():
                    typer.echo(f"  {kind}: {k['runs']} × {k['per_run_s']} s ({k['basis']})")
        else:
            typer.echo(f"ran {s['ran']}, skipped {s['skipped']} finished; aggregate with: edgekd experiment report {root / family}")

    command.__doc__ = doc
    experiment_app.command(family)(command)


_experiment_command("ablation", "--seeds", "Student, KD, IG, AT and their mixes at one cf, same seeds across methods (paired).")
_experiment_command("montecarlo", "--runs", "N runs per method, each on its own stratified 80% of the training set (validation, teacher and IG maps fixed).")
_experiment_command("sweep", "--seeds", "Compression factors 2.19× … 1121.71× for Student, KD, IG, KD+IG.")
_experiment_command("students", "--seeds", "KD students of other shapes and compute (half resolution, half-width early blocks, ResNets) for the accuracy–latency front.")


@experiment_app.command("imagenet-subset")
def experiment_imagenet_subset(
    root: Path = typer.Option(Path("runs/experiments"), help="experiment root holding the CIFAR-trained runs"),
    source: str = typer.Option("ablation", "--from", help="family whose students (and teacher) to evaluate"),
    images: Path = typer.Option(Path("../shared/data/imagenet-cifar10"), help="folder <cifar class>/*.JPEG"),
    teacher: Optional[Path] = typer.Option(None, help="teacher weights (default: the one the runs' reports name)"),
):
    """Evaluate CIFAR-trained students and teacher, without fine-tuning, on ImageNet images mapped to CIFAR-10."""
    from edgekd.distill.experiments import evaluate_on_imagenet_subset

    r = evaluate_on_imagenet_subset(root / source, images, str(teacher) if teacher else None, root / "imagenet-subset")
    typer.echo(r["markdown"])
    typer.echo(f"wrote {root / 'imagenet-subset' / 'results.json'}")


@experiment_app.command("copy-records")
def experiment_copy_records(
    source: Path = typer.Argument(..., help="a family folder with finished runs (e.g. runs/experiments/ablation)"),
    dest: Path = typer.Argument(..., help="where the records go (a folder in your repository, or a fresh ROOT/<family>)"),
):
    """Copy finished runs' records (run.json, report.json, robustness.json, failed.json; not the weights).

    Into a repository to keep a long family's progress; back into a fresh ROOT/<family> so the same
    `edgekd experiment <family>` command resumes without redoing those runs, and `edgekd experiment report`
    counts them with their kept corruption scores. Files the destination has are never overwritten."""
    from edgekd.distill.experiments import copy_records

    copied = copy_records(source, dest)
    typer.echo(f"copied the records of {len(copied)} finished run(s) from {source} to {dest}")


@experiment_app.command("report")
def experiment_report(
    family_dir: Path = typer.Argument(..., help="ROOT/<family> with finished runs"),
    plots: bool = typer.Option(True, help="write box plots and accuracy-vs-cf plots (PNG)"),
    robustness_images: int = typer.Option(10_000, min=0, help="score every run's student on this many evenly spaced "
                                          "test images (at most the whole test split: its clean accuracy is then the "
                                          "run's test accuracy) under the cards' corruptions (JPEG, noise, blur, "
                                          "brightness, contrast), cached per run; 0 = skip"),
):
    """Aggregate finished runs: results.json, results.csv, results.md and plots."""
    from edgekd.distill.experiments import aggregate

    r = aggregate(family_dir, plots=plots, robustness_images=robustness_images, log=typer.echo)
    typer.echo(r["markdown"])
    for f in r["figures"]:
        typer.echo(f"wrote {f}")
