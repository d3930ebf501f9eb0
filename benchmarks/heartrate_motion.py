"""iBCG under voluntary head motion: the head-speed gate, how it was chosen, what it costs.

    python benchmarks/heartrate_motion.py      # → benchmarks/heartrate_motion.json, heartrate_motion.md

Two kinds of trajectories, each once still and once with every kind of voluntary motion
(``edgekd.heartrate.voluntary``: nods at 0.1–1.5 Hz, sudden turns, glances, talking jaw, posture
shifts), several seeds each:

- *real*: the two real KLT head-motion recordings (769 / 453 face points, 25 frames/s, a person at
  rest and after exercise) with the motion added to their real heartbeat, breathing and tracker
  noise; reference: the rate of the simultaneous ECG (lead I R-peaks);
- *synthetic*: 60 s at 30 frames/s, 40 points over a 200 px or an 80 px region, a BCG recoil of
  0.15–0.5 px at 55–120 bpm, breathing sway of 0.5–2 px and tracker noise (the pixel motion of the
  synthetic face videos in benchmarks/heartrate_eval.md); reference: the rate put in.

Every sequence goes through the product's own path, ``estimate_from_tracks`` (``edgekd heartrate
--tracks``: the iBCG stage, SNR gate and hold rule), first with the head-speed gate off, to record
each window's head speed, rate and SNR; the threshold is then chosen by rule (below) and the whole
set is run again with the shipped gate. A window is a *false good* when it is called good and is more
than 5 bpm from the reference.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "ibcg-trajectories"

from edgekd.heartrate import ibcg  # noqa: E402
from edgekd.heartrate.pipeline import estimate_from_tracks  # noqa: E402
from edgekd.heartrate.reference import ecg_reference  # noqa: E402
from edgekd.heartrate.voluntary import KINDS, voluntary_motion  # noqa: E402

REAL_FPS = 25.0  # the rate at which the recordings agree with their ECG (benchmarks/heartrate_eval.md)
WRONG_BPM = 5.0


def real_sequences(seeds: int) -> list[dict]:
    import scipy.io as sio

    out = []
    for name in ("p1_normal", "p1_physical"):
        m = sio.loadmat(DATA / f"{name}_xy.mat")
        pos = np.stack([m["x"].T, m["y"].T], axis=-1).astype(np.float64)  # (T, P, 2)
        ref = ecg_reference(DATA / f"{name}_ecg.txt")["bpm"]
        height = float(np.percentile(pos[0, :, 1], 90) - np.percentile(pos[0, :, 1], 10))
        out.append({"name": f"real {name} still", "kind": "none", "data": "real", "positions": pos, "fps": REAL_FPS,
                    "bpm": ref})
        for kind in KINDS:
            for seed in range(seeds):
                rng = np.random.default_rng(1000 + seed)
                moved = pos + voluntary_motion(kind, pos[0], len(pos), REAL_FPS, rng, scale=height)
                out.append({"name": f"real {name} {kind} s{seed}", "kind": kind, "data": "real", "positions": moved,
                            "fps": REAL_FPS, "bpm": ref})
    return out


def synthetic_sequences(seeds: int, seconds: float = 60.0, fps: float = 30.0, points: int = 40) -> list[dict]:
    """Half the seeds track a 200 px region, half an 80 px one with the same pixel motion: the synthetic face
    videos of benchmarks/heartrate_eval.md move small faces by as many pixels, and the gate must pass them."""
    out = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        bpm, amp = rng.uniform(55, 120), rng.uniform(0.15, 0.5)
        height = 200.0 if seed % 2 == 0 else 80.0
        t = np.arange(int(seconds * fps)) / fps
        f = bpm / 60
        recoil = amp * (np.sin(2 * np.pi * f * t) + 0.35 * np.sin(4 * np.pi * f * t)) / 1.35
        breath_hz = rng.uniform(0.2, 0.33)
        sway = rng.uniform(0.5, 2.0) * np.sin(2 * np.pi * breath_hz * t)
        p0 = np.column_stack([rng.uniform(220, 220 + height, points), rng.uniform(140, 140 + height, points)])
        pos = np.repeat(p0[None], len(t), axis=0)
        pos[:, :, 0] += 0.4 * sway[:, None]
        pos[:, :, 1] += (sway + recoil)[:, None]
        pos += rng.normal(scale=0.08, size=pos.shape)  # tracker noise
        out.append({"name": f"synthetic s{seed} still", "kind": "none", "data": "synthetic", "positions": pos,
                    "fps": fps, "bpm": bpm})
        for kind in KINDS:
            moved = pos + voluntary_motion(kind, p0, len(t), fps, np.random.default_rng(100 + seed), scale=height)
            out.append({"name": f"synthetic s{seed} {kind}", "kind": kind, "data": "synthetic", "positions": moved,
                        "fps": fps, "bpm": bpm})
    return out


def run(sequences: list[dict], max_head_speed: float) -> list[dict]:
    saved = ibcg.MAX_HEAD_SPEED
    ibcg.MAX_HEAD_SPEED = max_head_speed
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for s in sequences:
                path = Path(tmp) / "tracks.npz"
                np.savez(path, positions=s["positions"], fps=s["fps"])
                rep = estimate_from_tracks(path)
                for w in rep["windows"]:
                    rows.append({"sequence": s["name"], "kind": s["kind"], "data": s["data"], "reference_bpm": s["bpm"],
                                 "t_end": w["t_end"], "bpm": w["bpm"], "snr_db": w["snr_db"], "quality": w["quality"],
                                 "passes": w["passes"], "head_speed": w["head_speed"]})
    finally:
        ibcg.MAX_HEAD_SPEED = saved
    return rows


def score(rows: list[dict]) -> dict:
    good = [r for r in rows if r["quality"] == "good"]
    wrong = [r for r in good if abs(r["bpm"] - r["reference_bpm"]) > WRONG_BPM]
    return {"windows": len(rows), "good": len(good), "false_good": len(wrong),
            "mean_abs_error_good": round(float(np.mean([abs(r["bpm"] - r["reference_bpm"]) for r in good])), 2)
            if good else None}


def table(rows: list[dict]) -> list[str]:
    lines = ["| data | motion | windows | good | false good (> 5 bpm off) | mean abs error of good (bpm) |",
             "|---|---|---:|---:|---:|---:|"]
    for data in ("real", "synthetic"):
        for kind in ("none", *KINDS):
            s = score([r for r in rows if r["data"] == data and r["kind"] == kind])
            if s["windows"]:
                lines.append(f"| {data} | {kind if kind != 'none' else 'still'} | {s['windows']} | {s['good']} | "
                             f"{s['false_good']} | {s['mean_abs_error_good'] if s['mean_abs_error_good'] is not None else '–'} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--report", action="store_true", help="only rewrite the .md from the .json")
    args = ap.parse_args()
    if args.report:
        write_markdown(json.loads((HERE / "heartrate_motion.json").read_text()))
        return
    from edgekd.utils.system import machine_record

    sequences = real_sequences(args.seeds) + synthetic_sequences(args.seeds + 1)
    off = run(sequences, float("inf"))
    still = [r["head_speed"] for r in off if r["kind"] == "none" and np.isfinite(r["head_speed"])]
    candidates = [float(v) for v in np.geomspace(0.005, 1.0, 24) if v >= max(still)]
    sweep = []
    for theta in candidates:  # ascending: more windows get through, so false goods only grow
        rows = run(sequences, round(theta, 4))
        s = score(rows)
        sweep.append({"threshold": round(theta, 4), **s, "good_still": score([r for r in rows if r["kind"] == "none"])["good"]})
        if s["false_good"] > 0:
            break
    passing = [s for s in sweep if s["false_good"] == 0]
    chosen = passing[-1] if passing else None
    res = {"command": "python benchmarks/heartrate_motion.py", "machine": machine_record()["cpu"],
           "sequences": [{k: v for k, v in s.items() if k != "positions"} for s in sequences],
           "max_still_head_speed": max(still), "sweep": sweep, "chosen": chosen, "gate_off": off}
    res["gate_on"] = run(sequences, chosen["threshold"]) if chosen else None
    (HERE / "heartrate_motion.json").write_text(json.dumps(res, indent=1, default=float))
    write_markdown(res)


def write_markdown(res: dict) -> None:
    off, on = res["gate_off"], res["gate_on"] or res["gate_off"]
    res["shipped_threshold"] = ibcg.MAX_HEAD_SPEED
    if not res["chosen"] or res["chosen"]["threshold"] != ibcg.MAX_HEAD_SPEED:
        print(f"warning: the shipped MAX_HEAD_SPEED ({ibcg.MAX_HEAD_SPEED}) is not the chosen threshold "
              f"({res['chosen'] and res['chosen']['threshold']}): set it in edgekd/heartrate/ibcg.py, then --report")
    speeds = {k: [r["head_speed"] for r in off if r["kind"] == k and np.isfinite(r["head_speed"])] for k in ("none", *KINDS)}
    s_off, s_on = score(off), score(on)
    lines = [
        "# iBCG under voluntary head motion", "",
        f"`{res['command']}` on {res['machine']}. {len(res['sequences'])} trajectory sequences (the two real KLT "
        "recordings with their ECG, and synthetic ones with a known rate), each still and with every kind of voluntary "
        "motion from `edgekd.heartrate.voluntary` (nods 0.1–1.5 Hz, turns, glances, talking jaw, posture shifts), "
        "through `estimate_from_tracks` (`edgekd heartrate --tracks`). False good: a window called `good` more than "
        f"{WRONG_BPM:g} bpm from the reference. The table \"The shipped gate\" is the run at the chosen threshold, "
        "which `edgekd/heartrate/ibcg.py` ships as `MAX_HEAD_SPEED`.", "",
        (f"**In one paragraph.** Without the head-speed gate, {s_off['false_good']} of {s_off['good']} `good` windows are "
         f"wrong; with it (iBCG gives no rate while the head moves faster than {res['shipped_threshold']:g} region "
         f"heights per second), {s_on['false_good']} of {s_on['good']}. Still heads are untouched: the fastest still "
         f"window moves {res['max_still_head_speed']:.3f} region heights/s." if res["chosen"] else
         f"**In one paragraph.** Voluntary motion does fool iBCG: without a gate {s_off['false_good']} of {s_off['good']} "
         "`good` windows are more than 5 bpm off, all of them under nods, glances or talking (still, turning and "
         "posture shifts: none). A head-speed gate alone cannot stop it without refusing still heads: the fastest still "
         f"window (a small face moving by the synthetic videos' pixels) reaches {res['max_still_head_speed']:.3f} region "
         "heights/s, and at the first threshold above it "
         f"{res['sweep'][0]['false_good'] if res['sweep'] else '?'} false goods remain. So the gate ships off "
         "(`MAX_HEAD_SPEED = inf`); every window's head speed is reported (`head_speed` in the JSON) and the motion "
         "generator and this benchmark are in place for the next gate (in-band motion amplitude, the rPPG cross-check)."),
        "",
        "## Head speed by motion (gate off)", "",
        "95th percentile over a window of the speed of the tracked points' median, smoothed over 0.2 s, in region "
        "heights (the points' 10th–90th percentile vertical spread) per second.", "",
        "| motion | windows | median | 90th percentile | max |", "|---|---:|---:|---:|---:|"]
    for k, v in speeds.items():
        if v:
            lines.append(f"| {k if k != 'none' else 'still'} | {len(v)} | {np.median(v):.3f} | {np.percentile(v, 90):.3f} | "
                         f"{max(v):.3f} |")
    lines += ["", "## Gate off", ""] + table(off)
    if res["chosen"]:
        lines += ["", "## The shipped gate", ""] + table(on)
    lines += ["", "## How the threshold was chosen", "",
              "Rule: the largest threshold, on a geometric grid from 0.005 to 1 region heights/s, at which no window of "
              "any sequence is a false good — but never below the fastest still window, so the gate costs a still head "
              "nothing.", "", "| threshold | good windows | of them still | false good |", "|---:|---:|---:|---:|"]
    for s in res["sweep"]:
        lines.append(f"| {s['threshold']:g} | {s['good']} | {s['good_still']} | {s['false_good']} |")
    lines += ["", f"Chosen: {res['chosen']['threshold'] if res['chosen'] else 'none (no threshold reaches zero false good)'}. "
              "The gate cannot see in-band head motion smaller than the threshold (a nod of under ~1 % of the region at "
              "heart-rate frequency), and it has only been checked on trajectories: on real face video the tracker's own "
              "errors under large motion come on top.", ""]
    (HERE / "heartrate_motion.md").write_text("\n".join(lines))
    print(f"wrote {HERE / 'heartrate_motion.md'}")


if __name__ == "__main__":
    main()
