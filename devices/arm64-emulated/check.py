#!/usr/bin/env python3
"""Run exported models on arm64 kernels (Debian arm64 under qemu) and compare them with this machine's run.

No Raspberry Pi or Jetson is needed: an arm64 root filesystem (Debian 12, made once with mmdebstrap and
cached) runs through qemu-user-static. The wheel of this checkout is installed there with its [device]
extra, pinned to the runtime versions installed here, so the only difference between the two runs is
the CPU kernels. Both sides run the same measurements (the ``worker`` part of this file, torch-free):

- the logits of every usable file of every model folder on the same N test images: top-1 agreement and
  largest logit difference against this machine, and accuracy on both;
- ``edgekd bench`` on every exported format (does it run; emulated timings are never reported as times);
- ``edgekd predict`` on a video file (labels per frame, both sides);
- ``edgekd track run --method dfe`` with the packaged DFE encoder (positions, both sides) and
  ``edgekd heartrate`` with DFE;
- both Raspberry Pi apps (devices/raspberry-pi) on the video file.

    sudo apt-get install qemu-user-static binfmt-support mmdebstrap      # once
    python devices/arm64-emulated/check.py MODEL_DIR [MODEL_DIR ...] --data cifar10 --images 200 \\
        --json benchmarks/arm64.json --md benchmarks/arm64.md --add-to-card

Needs root (mmdebstrap and chroot). The root filesystem lives in ~/.cache/edgekd/arm64-bookworm (or
$EDGEKD_ARM64_ROOTFS, or --rootfs) and is built from nothing when missing (about 3 min plus the wheels).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ROOTFS = Path(os.environ.get("EDGEKD_ARM64_ROOTFS", Path.home() / ".cache/edgekd/arm64-bookworm"))
SUITE = "bookworm"
GLIBC = (2, 36)  # Debian 12's
PACKAGES = "python3,python3-venv,ca-certificates,libglib2.0-0"
VENV = "/opt/edgekd"  # inside the root filesystem
WORK = "/work"  # inside the root filesystem: staged models, images, video and results
PINNED = ("numpy", "onnxruntime", "ai-edge-litert", "opencv-python-headless", "psutil")


class CheckError(SystemExit):
    def __init__(self, message: str, hint: str = ""):
        super().__init__(f"error: {message}" + (f"\n  → {hint}" if hint else ""))


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


# ---------------------------------------------------------------------------------------------- host side

def ensure_emulation() -> str:
    """qemu-aarch64 registered with binfmt_misc (so the kernel runs arm64 binaries through it); its version."""
    qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    if not qemu:
        raise CheckError("qemu-user-static is not installed", "sudo apt-get install qemu-user-static binfmt-support")
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)], capture_output=True)
    if not any(binfmt.glob("qemu-aarch64*")):
        for cmd in (["update-binfmts", "--enable", "qemu-aarch64"], ["systemctl", "restart", "systemd-binfmt"]):
            if shutil.which(cmd[0]):
                subprocess.run(cmd, capture_output=True)
    if not any(binfmt.glob("qemu-aarch64*")):
        raise CheckError("arm64 binaries are not registered with binfmt_misc",
                         "sudo apt-get install binfmt-support qemu-user-static (a container needs --privileged)")
    out = subprocess.run([qemu, "--version"], capture_output=True, text=True).stdout.splitlines()
    return out[0] if out else qemu


def ensure_rootfs(rootfs: Path) -> Path:
    """The arm64 Debian root filesystem: reused when complete, else built into a fresh folder and renamed."""
    marker = rootfs / ".edgekd-rootfs"
    if marker.exists():
        return rootfs
    if os.geteuid() != 0:
        raise CheckError("building the arm64 root filesystem needs root (mmdebstrap, chroot)", "run with sudo")
    if not shutil.which("mmdebstrap"):
        raise CheckError("mmdebstrap is not installed", "sudo apt-get install mmdebstrap")
    partial = rootfs.with_name(rootfs.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    print(f"building the arm64 root filesystem in {rootfs} (Debian {SUITE}, a few minutes)", flush=True)
    run(["mmdebstrap", "--arch=arm64", "--variant=apt", f"--include={PACKAGES}", SUITE, str(partial)])
    marker_tmp = partial / ".edgekd-rootfs"
    marker_tmp.write_text(json.dumps({"suite": SUITE, "packages": PACKAGES, "built": time.strftime("%Y-%m-%dT%H:%M:%S")}))
    shutil.rmtree(rootfs, ignore_errors=True)
    partial.rename(rootfs)
    return rootfs


class Chroot:
    """Commands inside the root filesystem with /proc and /dev mounted (not /sys: ONNX Runtime's cpuinfo
    segfaults under qemu when it can read the host's /sys; without it, it only warns)."""

    def __init__(self, rootfs: Path):
        self.rootfs = rootfs
        self.mounted: list[Path] = []

    def __enter__(self) -> "Chroot":
        import fcntl

        # one check at a time per root filesystem: they share its /work and its mounts
        self.lock = open(self.rootfs / ".edgekd-lock", "w")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another check using {self.rootfs}", flush=True)
            fcntl.flock(self.lock, fcntl.LOCK_EX)
        for src, kind in (("/proc", "proc"), ("/dev", "bind")):
            target = self.rootfs / src.lstrip("/")
            target.mkdir(exist_ok=True)
            if not os.path.ismount(target):
                run(["mount", "-t", "proc", "proc", str(target)] if kind == "proc" else ["mount", "--bind", src, str(target)])
            self.mounted.append(target)  # also a mount a killed run left behind: unmounted on the way out
        for name in ("etc/resolv.conf", "etc/ssl/certs/ca-certificates.crt"):  # pip reaches the package index
            src = Path("/") / name
            if src.exists():
                (self.rootfs / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, self.rootfs / name)
        return self

    def __exit__(self, *exc) -> None:
        for target in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(target)], capture_output=True)
        self.lock.close()

    def __call__(self, *cmd: str, capture: bool = False) -> subprocess.CompletedProcess:
        env = {"PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "LC_ALL": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1"}
        chroot = shutil.which("chroot") or "/usr/sbin/chroot"  # looked up here: env holds the arm64 side's PATH
        return subprocess.run([chroot, str(self.rootfs), *cmd], env=env, check=True, text=True,
                              capture_output=capture)


def build_wheel(dest: Path) -> Path:
    """This checkout as a wheel (the same one a user installs)."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("edgekd-*.whl"):
        old.unlink()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dest), str(ROOT)])
    return next(dest.glob("edgekd-*.whl"))


def host_pins() -> list[str]:
    """The device runtimes' versions installed here: arm64 gets the same, so only the kernels differ."""
    return [f"{name}=={v}" for name, v in _versions().items() if name in PINNED and v]


def install_wheel(chroot: Chroot, wheel: Path, pins: list[str]) -> None:
    """The wheel's [device] extra in a venv inside the root filesystem. The aarch64 wheels of its dependencies are
    fetched by this machine's pip (native speed); the emulated pip only unpacks them, offline. Nothing is
    reinstalled when the wheel and the pins are unchanged."""
    venv_python = chroot.rootfs / VENV.lstrip("/") / "bin/python"
    stamp = chroot.rootfs / VENV.lstrip("/") / ".edgekd-installed"
    want = hashlib.sha256(wheel.read_bytes() + "\n".join(pins).encode()).hexdigest()
    if venv_python.exists() and stamp.exists() and stamp.read_text() == want:
        return
    staged = chroot.rootfs / "tmp/wheels"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    shutil.copy(wheel, staged / wheel.name)
    (staged / "pins.txt").write_text("\n".join(pins) + "\n")
    if not venv_python.exists():
        chroot("python3", "-m", "venv", VENV)
    py = chroot(f"{VENV}/bin/python", "-c", "import sys; print(f'{sys.version_info[0]}{sys.version_info[1]}')",
                capture=True).stdout.strip()
    print(f"fetching the aarch64 wheels of {wheel.name}[device] for Python {py} ({', '.join(pins)})", flush=True)
    # every manylinux tag the root filesystem's glibc (Debian 12: 2.36) runs
    platforms = [a for minor in range(GLIBC[1], 16, -1) for a in ("--platform", f"manylinux_2_{minor}_aarch64")]
    run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary=:all:",
         *platforms, "--platform", "manylinux2014_aarch64", "--python-version", py, "--implementation", "cp",
         "-d", str(staged / "deps"), f"{staged / wheel.name}[device]", "-c", str(staged / "pins.txt")])
    print("installing them on arm64 (emulated pip, offline)", flush=True)
    pip = (f"{VENV}/bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index")
    chroot(*pip, "--find-links", "/tmp/wheels/deps", f"/tmp/wheels/{wheel.name}[device]")
    chroot(*pip, "--no-deps", "--force-reinstall", f"/tmp/wheels/{wheel.name}")  # same version, new code
    stamp.write_text(want)


def start_points(video: str, work: Path) -> list[str]:
    """The skin points `--points auto` picks on this machine in the first frame, as x,y: both sides track from
    them (each side's own face detection may place them differently, which the heart-rate rows show)."""
    import csv

    out = work / "start-points.csv"
    run(["edgekd", "track", "run", video, "--points", "auto", "--method", "lk", "--max-frames", "1", "--out", str(out)],
        capture_output=True)
    rows = [r for r in csv.DictReader(out.open()) if r["frame"] == "0"]
    return [f"{float(r['x']):.2f},{float(r['y']):.2f}" for r in rows]


def stage_images(data: str, n: int, dest: Path) -> dict:
    """The first n test images of the data set (the export gate's split), as uint8 (N, H, W, 3) and labels."""
    import numpy as np

    from edgekd.data import load_dataset

    d = load_dataset(data)
    n = min(n, len(d.test))
    np.savez(dest, images=np.ascontiguousarray(d.test.images[:n]), labels=d.test.labels[:n])
    return {"data": Path(data).name if Path(data).exists() else data, "split": "test", "images": n}


def stage(spec: dict, rootfs: Path, host_work: Path) -> tuple[dict, dict]:
    """Copies of the models, images, video and apps for both sides; the two specs point at their copies."""
    arm_work = rootfs / WORK.lstrip("/")
    shutil.rmtree(arm_work, ignore_errors=True)
    arm_work.mkdir(parents=True)
    for name in spec["images"].values():
        shutil.copy(host_work / name, arm_work / name)
    shutil.copytree(ROOT / "devices/raspberry-pi", arm_work / "apps")
    models = {}
    for m in spec["models"]:
        shutil.copytree(m, arm_work / "models" / Path(m).name)
        models[Path(m).name] = f"{WORK}/models/{Path(m).name}"
    arm = {**spec, "work": WORK, "images": {k: f"{WORK}/{v}" for k, v in spec["images"].items()},
           "apps": f"{WORK}/apps", "models": models}
    if spec.get("video"):
        shutil.copy(spec["video"], arm_work / ("video" + Path(spec["video"]).suffix))
        arm["video"] = f"{WORK}/video{Path(spec['video']).suffix}"
    host = {**spec, "work": str(host_work), "images": {k: str(host_work / v) for k, v in spec["images"].items()},
            "apps": str(ROOT / "devices/raspberry-pi"), "models": {Path(m).name: str(Path(m).resolve()) for m in spec["models"]}}
    return host, arm


# -------------------------------------------------------------------------------------------- worker side

def worker(spec_path: str) -> None:
    """The measurements, on whichever machine runs this (host python, or the venv inside the arm64 chroot).
    Imports edgekd's device side only: no torch there."""
    import platform

    import numpy as np

    from edgekd.runtime import Classifier
    from edgekd.runtime.classifier import usable_formats, read_card

    spec = json.loads(Path(spec_path).read_text())
    work = Path(spec["work"])
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    result: dict = {"machine": platform.machine(), "versions": _versions(), "models": {}, "commands": {}}
    logits = {}
    for name, model_dir in spec["models"].items():
        card = read_card(model_dir)
        formats = [f for f in usable_formats(card) if spec["formats"] == "all" or f in spec["formats"].split(",")]
        result["models"][name] = {}
        images = np.load(spec["images"][name])["images"]
        for fmt in formats:
            t0 = time.perf_counter()
            clf = Classifier(model_dir, format=fmt)
            z = clf.logits(images)
            logits[f"{name}/{fmt}"] = z
            result["models"][name][fmt] = {"images": len(z), "finite": bool(np.isfinite(z).all()),
                                           "seconds": round(time.perf_counter() - t0, 2)}
        if spec.get("bench", True):
            result["commands"][f"bench {name}"] = _command(
                ["edgekd", "bench", model_dir, "--runs", "3", "--warmup", "1", "--quiet", "--json", str(out / f"bench-{name}.json")])
        if spec.get("video"):
            pj = out / f"predict-{name}.json"
            # one format on both sides (by default each picks its own: LiteRT on ARM, ONNX Runtime elsewhere)
            video_format = "tflite-int8" if "tflite-int8" in formats else formats[0]
            result["models"][name]["video_format"] = video_format
            result["commands"][f"predict {name}"] = _command(
                ["edgekd", "predict", model_dir, "--video", spec["video"], "--max-frames", str(spec["frames"]),
                 "--format", video_format, "--json", str(pj)])
            if pj.exists():
                result["models"][name]["video_labels"] = [f.get("label") for f in _frames(json.loads(pj.read_text()))]
            aj = out / f"classify-app-{name}.json"
            result["commands"][f"classify_app {name}"] = _command(
                [sys.executable, f"{spec['apps']}/classify_app.py", model_dir, spec["video"], "--seconds",
                 str(spec["frames"] / 25), "--json", str(aj)])
    np.savez(out / "logits.npz", **logits)
    if spec.get("video"):  # the decoded pixels themselves: video decoders convert colour with per-CPU code
        from edgekd.utils.video import open_video

        (capture, _), frames = open_video(spec["video"]), []
        while len(frames) < spec["frames"]:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        capture.release()
        np.save(out / "frames.npy", np.stack(frames))
    if spec.get("video") and spec.get("tracker", True):
        from edgekd.track.weights import SHIPPED_ENCODER_DIR

        result["tracks"] = {}
        for file in spec["dfe_files"]:  # each file of the packaged encoder, found inside the installed package
            tracks = out / f"tracks-{file}.csv"
            points = [a for xy in spec["points"] for a in ("--points", xy)]  # the same start points on both sides
            result["commands"][f"track dfe {file}"] = _command(
                ["edgekd", "track", "run", spec["video"], *points, "--method", "dfe", "--encoder",
                 str(SHIPPED_ENCODER_DIR / file), "--max-frames", str(spec["frames"]), "--out", str(tracks)])
            if tracks.exists():
                result["tracks"][file] = tracks.read_text()
    if spec.get("video") and spec.get("heartrate", True):
        hj = out / "heartrate.json"
        result["commands"]["heartrate dfe"] = _command(
            ["edgekd", "heartrate", spec["video"], "--tracker", "dfe", "--window", str(spec["window"]), "--seconds",
             str(spec["seconds"]), "--json", str(hj)])
        if hj.exists():
            result["heartrate"] = json.loads(hj.read_text())
        result["commands"]["heart_rate_app"] = _command(  # that it runs: the rates are heartrate's above
            [sys.executable, f"{spec['apps']}/heart_rate_app.py", spec["video"], "--window", str(spec["window"]),
             "--seconds", "2", "--json", str(out / "heart-rate-app.json")])
    (out / "result.json").write_text(json.dumps(result, indent=1))


def _versions() -> dict:
    """Versions of edgekd and the device runtimes here, and whether torch could be imported."""
    import importlib.util
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("edgekd", *PINNED):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    out["torch importable"] = importlib.util.find_spec("torch") is not None
    return out


def _frames(payload) -> list:
    return payload.get("frames", payload.get("predictions", [])) if isinstance(payload, dict) else payload


def _command(cmd: list[str]) -> dict:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
    return {"command": " ".join(Path(c).name if c.startswith("/") and not c.endswith((".mp4", ".json", ".csv")) else c
                                for c in cmd), "rc": p.returncode, "tail": tail, "seconds": round(time.perf_counter() - t0, 1)}


# ------------------------------------------------------------------------------------------------ compare

def compare(host: dict, arm: dict, host_logits, arm_logits, labels) -> dict:
    import numpy as np

    rows = {}
    for name, formats in host["models"].items():
        rows[name] = {}
        for fmt in formats:
            if fmt in ("video_labels", "video_format"):
                continue
            key = f"{name}/{fmt}"
            if key not in arm_logits.files:
                rows[name][fmt] = {"status": "did not run on arm64"}
                continue
            a, b = host_logits[key], arm_logits[key]
            rows[name][fmt] = {
                "images": int(len(a)), "top1_agreement": float((a.argmax(1) == b.argmax(1)).mean()),
                "disagreements": int((a.argmax(1) != b.argmax(1)).sum()),
                "max_abs_diff": float(np.abs(a.astype(np.float64) - b).max()),
                "acc_here": float(100 * (a.argmax(1) == labels[name]).mean()),
                "acc_there": float(100 * (b.argmax(1) == labels[name]).mean()),
            }
        hv, av = formats.get("video_labels"), arm["models"].get(name, {}).get("video_labels")
        if hv is not None and av is not None:
            rows[name]["predict_video"] = {"frames": len(hv), "same_labels": sum(x == y for x, y in zip(hv, av)),
                                           "frames_arm64": len(av), "format": formats.get("video_format")}
    out = {"formats": rows}
    if host.get("frames") is not None and arm.get("frames") is not None:
        a, b = host["frames"].astype(np.int16), arm["frames"].astype(np.int16)
        n = min(len(a), len(b))
        diff = np.abs(a[:n] - b[:n])
        out["decoded_frames"] = {"frames": n, "max_level_diff": int(diff.max()), "mean_level_diff": float(diff.mean()),
                                 "fraction_differing": float((diff > 0).mean())}
    for file, text in (host.get("tracks") or {}).items():
        if (arm.get("tracks") or {}).get(file):
            out.setdefault("tracker", {})[file] = _track_difference(text, arm["tracks"][file])
    if host.get("heartrate") is not None and arm.get("heartrate") is not None:
        out["heartrate"] = {"x86": _hr_summary(host["heartrate"]), "arm64": _hr_summary(arm["heartrate"])}
    return out


def _track_difference(a_csv: str, b_csv: str) -> dict:
    import csv
    import io

    def read(text):
        return {(r["frame"], r["point"]): r for r in csv.DictReader(io.StringIO(text))}

    a, b = read(a_csv), read(b_csv)
    diffs, lost_a, lost_b = [], 0, 0
    for key, ra in a.items():
        rb = b.get(key)
        ok_a, ok_b = ra.get("ok") in ("1", "True", "true"), rb is not None and rb.get("ok") in ("1", "True", "true")
        lost_a += not ok_a
        lost_b += not ok_b
        if ok_a and ok_b:
            diffs.append(max(abs(float(ra["x"]) - float(rb["x"])), abs(float(ra["y"]) - float(rb["y"]))))
    return {"point_frames": len(a), "compared": len(diffs), "lost_x86": lost_a, "lost_arm64": lost_b,
            "max_px": max(diffs) if diffs else None, "mean_px": sum(diffs) / len(diffs) if diffs else None}


def _hr_summary(payload: dict) -> dict:
    s = payload.get("summary", {}) if isinstance(payload, dict) else {}
    windows = payload.get("windows", []) if isinstance(payload, dict) else []
    return {"face_box": payload.get("face_box"), "bpm": s.get("bpm"), "quality": s.get("quality"),
            "good_windows": s.get("good_windows"), "windows": s.get("windows"),
            "window_bpm": [None if w.get("bpm") is None else round(float(w["bpm"]), 1) for w in windows]}


def write_markdown(report: dict, path: Path) -> None:
    lines = ["# arm64 kernels: the exported files on arm64 against this machine", "",
             f"`{report['command']}`", "",
             f"Host: {report['host']['cpu']} ({report['host']['arch']}); arm64: Debian {SUITE} arm64 root filesystem under "
             f"{report['emulator']} (user-mode emulation: arm64 instructions, so arm64 kernels of ONNX Runtime and "
             "XNNPACK, on an x86 CPU). Same versions both sides: "
             + ", ".join(f"{k} {v}" for k, v in report["versions_arm64"].items() if k != "torch importable")
             + f"; torch importable on arm64: {report['versions_arm64'].get('torch importable')}. "
             "Images: the first N of each model's test split ("
             + "; ".join(f"{k}: {v['images']} of {v['data']}" for k, v in report["images"].items())
             + "). Timings under emulation are not device timings and are not reported.", "",
             "| model | format | images | top-1 agreement | disagreements | max abs logit diff | acc % x86 | acc % arm64 |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, formats in report["comparison"]["formats"].items():
        for fmt, r in formats.items():
            if fmt == "predict_video":
                continue
            if "images" not in r:
                lines.append(f"| {name} | {fmt} | | {r.get('status')} | | | | |")
                continue
            lines.append(f"| {name} | {fmt} | {r['images']} | {100 * r['top1_agreement']:.2f} % | {r['disagreements']} | "
                         f"{r['max_abs_diff']:.3g} | {r['acc_here']:.2f} | {r['acc_there']:.2f} |")
    lines += ["", "## Commands on arm64 (exit code)", "", "| command | x86 | arm64 |", "| --- | ---: | ---: |"]
    for key, c in report["arm64"]["commands"].items():
        h = report["x86"]["commands"].get(key, {})
        command = re.sub(r"(--points \S+ )+", "--points X,Y … ", c["command"])
        lines.append(f"| `{command}` | {h.get('rc', '—')} | {c['rc']} |")
    comp = report["comparison"]
    extra = []
    if comp.get("decoded_frames"):
        d = comp["decoded_frames"]
        extra.append(f"- The video's first {d['frames']} frames as OpenCV decodes them (same OpenCV and FFmpeg versions): "
                     f"{100 * d['fraction_differing']:.1f} % of pixel values differ between arm64 and x86, by at most "
                     f"{d['max_level_diff']} levels (mean {d['mean_level_diff']:.2f}). The colour conversion of the "
                     "decoder rounds differently per CPU, so video results can differ even where the model's kernels "
                     "agree exactly.")
    for name, formats in comp["formats"].items():
        v = formats.get("predict_video")
        if v:
            extra.append(f"- `edgekd predict --video --format {v['format']}`, {name}: {v['same_labels']} of {v['frames']} "
                         f"frames got the same label on both ({v['frames_arm64']} frames on arm64).")
    if comp.get("tracker"):
        extra += ["", "DFE tracker, the packaged encoder's files (`edgekd track run VIDEO --points X,Y … --method dfe "
                  "--encoder FILE`, the start points `--points auto` picks on x86): positions on arm64 against x86, "
                  "same points, same frames.", "",
                  "| encoder file | point-frames | compared | max px | mean px | lost x86 | lost arm64 |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for file, t in comp["tracker"].items():
            fmt = (lambda v: f"{v:.3g}" if v is not None else "—")
            extra.append(f"| {file} | {t['point_frames']} | {t['compared']} | {fmt(t['max_px'])} | {fmt(t['mean_px'])} | "
                         f"{t['lost_x86']} | {t['lost_arm64']} |")
        extra.append("")
    if comp.get("heartrate"):
        h = comp["heartrate"]
        extra += ["`edgekd heartrate VIDEO --tracker dfe` (the packaged encoder's default file, face detection and "
                  "start points chosen on each side):", "",
                  "| | face box (x, y, w, h) | summary | quality | good windows | rate per window (bpm) |",
                  "| --- | --- | --- | --- | ---: | --- |"]
        for side in ("x86", "arm64"):
            r = h[side]
            extra.append(f"| {side} | {r['face_box']} | {r['bpm']} | {r['quality']} | {r['good_windows']} of "
                         f"{r['windows']} | {', '.join(str(b) for b in r['window_bpm'])} |")
    if extra:
        lines += ["", "## Video, tracker, heart rate", "", *extra]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="exported model folders (card.json beside the files)")
    ap.add_argument("--data", default="digits", help="data set of the models (its test split's first N images): one "
                    "for all, or one per model, comma-separated, e.g. ../shared/data/cifar10-png.zip,digits")
    ap.add_argument("--images", type=int, default=200, help="N images (emulation is slow: a few hundred)")
    ap.add_argument("--formats", default="all", help="formats to compare, e.g. onnx-int8,tflite-int8 (default: every usable one)")
    ap.add_argument("--video", default=None, help="a video file for predict, the tracker, heartrate and the apps")
    ap.add_argument("--frames", type=int, default=30, help="frames of the video to run")
    ap.add_argument("--seconds", type=float, default=6.5, help="seconds of the video for `edgekd heartrate`")
    ap.add_argument("--window", type=float, default=6.0, help="heart-rate analysis window, s")
    ap.add_argument("--dfe-files", default="model.onnx,model.int8-mixed.onnx,model.int8.onnx,model.tflite,"
                                           "model.int8-mixed.tflite,model.int8.tflite",
                    help="files of the packaged DFE encoder to track with (with --video)")
    ap.add_argument("--no-bench", action="store_true", help="skip `edgekd bench`")
    ap.add_argument("--no-heartrate", action="store_true", help="skip `edgekd heartrate` and the heart-rate app (the "
                    "slowest part under emulation)")
    ap.add_argument("--rootfs", type=Path, default=DEFAULT_ROOTFS)
    ap.add_argument("--work", type=Path, default=None, help="host scratch folder (default: a fresh one in /tmp)")
    ap.add_argument("--json", type=Path, default=None, help="write the whole report here")
    ap.add_argument("--md", type=Path, default=None, help="write the markdown table here")
    ap.add_argument("--add-to-card", action="store_true", help="record the agreement in each model's card")
    ap.add_argument("--probe", action="store_true", help="only check that arm64 emulation works here (exit 3 if not)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker)
    if args.probe:
        try:
            print(ensure_emulation())
        except CheckError as exc:
            print(exc.code, file=sys.stderr)
            sys.exit(3)
        return
    if not args.models and not args.video:
        ap.error("give at least one exported model folder (or --video for the tracker alone)")
    for m in args.models:
        if not (Path(m) / "card.json").is_file():
            raise CheckError(f"{m} is not an exported model folder (no card.json)", "give a folder edgekd export wrote")
    if args.video and not Path(args.video).is_file():
        raise CheckError(f"video not found: {args.video}")

    import tempfile

    import numpy as np

    from edgekd.utils.system import machine_record

    emulator = ensure_emulation()
    rootfs = ensure_rootfs(args.rootfs.resolve())
    host_work = args.work or Path(tempfile.mkdtemp(prefix="edgekd-arm64-"))
    host_work.mkdir(parents=True, exist_ok=True)
    data = args.data.split(",")
    if len(data) not in (1, len(args.models)):
        raise CheckError(f"{len(data)} data sets for {len(args.models)} models", "give one, or one per model")
    data = data * len(args.models) if len(data) == 1 else data
    names = [Path(m).name for m in args.models]
    images = {n: stage_images(d, args.images, host_work / f"images-{n}.npz") for n, d in zip(names, data)}
    spec = {"models": [str(Path(m).resolve()) for m in args.models], "formats": args.formats, "video": args.video,
            "images": {n: f"images-{n}.npz" for n in names},
            "frames": args.frames, "seconds": args.seconds, "window": args.window, "bench": not args.no_bench,
            "heartrate": not args.no_heartrate,
            "dfe_files": [f for f in args.dfe_files.split(",") if f],
            "points": start_points(args.video, host_work) if args.video else []}
    wheel = build_wheel(host_work / "wheel")
    with Chroot(rootfs) as chroot:
        host_spec, arm_spec = stage(spec, rootfs, host_work)
        (host_work / "spec.json").write_text(json.dumps(host_spec))
        (rootfs / WORK.lstrip("/") / "spec.json").write_text(json.dumps(arm_spec))
        install_wheel(chroot, wheel, host_pins())
        print("x86 run", flush=True)
        run([sys.executable, __file__, "--worker", str(host_work / "spec.json")])
        print("arm64 run (emulated)", flush=True)
        script = rootfs / WORK.lstrip("/") / "devices/arm64-emulated/check.py"  # the same layout as here
        script.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(__file__, script)
        t0 = time.perf_counter()
        chroot(f"{VENV}/bin/python", f"{WORK}/devices/arm64-emulated/check.py", "--worker", f"{WORK}/spec.json")
        emulated_s = time.perf_counter() - t0
        arm_dir = host_work / "arm64-out"  # copied while the lock is held
        shutil.rmtree(arm_dir, ignore_errors=True)
        shutil.copytree(rootfs / WORK.lstrip("/") / "out", arm_dir)
    host_res = json.loads((host_work / "out/result.json").read_text())
    arm_res = json.loads((arm_dir / "result.json").read_text())
    if arm_res["machine"] != "aarch64":
        raise CheckError(f"the emulated side reports {arm_res['machine']}, not aarch64")
    labels = {n: np.load(host_work / f"images-{n}.npz")["labels"] for n in names}
    for res, folder in ((host_res, host_work / "out"), (arm_res, arm_dir)):
        res["frames"] = np.load(folder / "frames.npy") if (folder / "frames.npy").exists() else None
    comparison = compare(host_res, arm_res, np.load(host_work / "out/logits.npz"), np.load(arm_dir / "logits.npz"), labels)
    argv = [a if not a.startswith("/") else os.path.relpath(a, ROOT) for a in sys.argv[1:]]
    report = {"command": "python devices/arm64-emulated/check.py " + " ".join(argv), "host": machine_record(),
              "emulator": emulator, "rootfs": f"Debian {SUITE} arm64 ({PACKAGES})", "images": images,
              "versions_x86": host_res["versions"], "versions_arm64": arm_res["versions"],
              "emulated_wall_s": round(emulated_s, 1), "comparison": comparison,
              "x86": {k: v for k, v in host_res.items() if k in ("commands", "machine")},
              "arm64": {k: v for k, v in arm_res.items() if k in ("commands", "machine")},
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.md:
        write_markdown(report, args.md)
    if args.add_to_card and comparison.get("tracker"):
        from edgekd.track.export import record_kernel_check
        from edgekd.track.weights import SHIPPED_ENCODER_DIR

        record_kernel_check(SHIPPED_ENCODER_DIR, {"kernels": "arm64 (Debian arm64 under qemu)", "against":
                            f"{report['host']['arch']} ({report['host']['cpu']})", "video": Path(args.video).name,
                            "files": {f: {**t, "command": report["command"]} for f, t in comparison["tracker"].items()},
                            "decoded_frames": comparison.get("decoded_frames"),
                            "command": report["command"], "date": report["finished"]})
    if args.add_to_card:
        from edgekd.convert.card import add_kernel_check

        for m in args.models:
            name = Path(m).name
            rows = {f: r for f, r in comparison["formats"].get(name, {}).items() if "top1_agreement" in r}
            add_kernel_check(m, {"kernels": "arm64 (Debian arm64 under qemu)", "against": f"{report['host']['arch']} "
                                 f"({report['host']['cpu']})", "data": images[name], "formats": rows,
                                 "command": report["command"], "date": report["finished"]})
    failed = [k for k, c in arm_res["commands"].items() if c["rc"] != 0]
    for name, formats in comparison["formats"].items():
        for fmt, r in formats.items():
            if "top1_agreement" in r:
                print(f"{name} {fmt}: {100 * r['top1_agreement']:.2f} % top-1 agreement over {r['images']} images, "
                      f"max logit diff {r['max_abs_diff']:.3g}, acc x86 {r['acc_here']:.2f} / arm64 {r['acc_there']:.2f}")
    if failed:
        print("failed on arm64: " + ", ".join(failed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
