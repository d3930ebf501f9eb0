"""Beat-to-beat intervals and HRV from real camera PPG against a simultaneous ECG chest strap.

    python benchmarks/hrv.py            # → benchmarks/hrv.json, benchmarks/hrv.md

Data: ../shared/data/camera-ppg-ecg (21 recordings, a fingertip on a phone camera: per-frame mean
R, G, B with capture times; RR intervals from a Polar H10 recorded at the same time). Every
recording goes through the product's own path, ``edgekd.heartrate.hrv.analyse_pulse`` (what
``edgekd hrv`` runs), then ``compare_with_rr``. Choices (fiducial, band, interpolation, the gate)
were made on recordings 01–10 (development) and are reported on 11–21 (held out) separately;
the subjects' identities are not published and 13 people made the 21 recordings, so a person
may appear on both sides. Negative control: each recording with its samples shuffled in time
(no pulse left, same values): every `good` claim there is a false one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "camera-ppg-ecg" / "data"

from edgekd.heartrate import hrv  # noqa: E402

DEV = [f"subject_{i:02d}" for i in range(1, 11)]


def choices(directory: Path) -> list[dict]:
    """Fiducial × pulse band × interpolation on the development recordings: median interval error vs the ECG."""
    data = [(hrv.read_ppg_csv(d / "PPG.csv"), hrv.read_rr(d / "RR.txt")) for d in sorted(directory.glob("subject_*"))
            if d.name in DEV]
    out = []
    for fiducial in hrv.FIDUCIALS:
        for band in ((0.5, 3.5), (0.5, 5.0), (0.5, 8.0)):
            for interpolation in ("linear", "cubic"):
                maes = []
                for (t, channels), rr in data:
                    r = hrv.analyse_pulse(t, channels, fiducial=fiducial, pulse_band=band, interpolation=interpolation)
                    maes.append(hrv.compare_with_rr(r, rr)["ibi_mae_ms"])
                out.append({"fiducial": fiducial, "pulse_band_hz": list(band), "interpolation": interpolation,
                            "recordings": DEV[: len(maes)], "ibi_mae_ms": maes})
    # compared on the recordings every variant could align with the ECG (a failed alignment has no error to rank)
    common = [i for i in range(len(data)) if all(c["ibi_mae_ms"][i] is not None for c in out)]
    for c in out:
        values = [c["ibi_mae_ms"][i] for i in common]
        c["median_ms"] = round(statistics.median(values), 1)
        c["mean_ms"] = round(statistics.mean(values), 1)
        c["not_aligned"] = sum(m is None for m in c["ibi_mae_ms"])
        c["compared_on"] = len(common)
    return out


def evaluate(directory: Path) -> dict:
    rows, controls = [], []
    rng = np.random.default_rng(0)
    for d in sorted(directory.glob("subject_*")):
        t, channels = hrv.read_ppg_csv(d / "PPG.csv")
        rr = hrv.read_rr(d / "RR.txt")
        t0 = time.perf_counter()
        result = hrv.analyse_pulse(t, channels)
        seconds = time.perf_counter() - t0
        cmp = hrv.compare_with_rr(result, rr)
        rows.append({"recording": d.name, "split": "development" if d.name in DEV else "held out",
                     "duration_s": round(float(t[-1] - t[0]), 1), "frames_per_s": round(len(t) / float(t[-1] - t[0]), 1),
                     "analysis_ms": round(1000 * seconds, 1), **{k: v for k, v in result.to_dict().items()
                                                                if k not in ("ibi_ms", "valid")},
                     "rmssd_measured_ms": round(result.rmssd_ms, 1), "sdnn_measured_ms": round(result.sdnn_ms, 1),
                     "bpm_measured": round(result.bpm, 2), "reference": cmp})
        shuffled = {k: v[rng.permutation(len(v))] for k, v in channels.items()}
        control = hrv.analyse_pulse(t, shuffled)
        controls.append({"recording": d.name, "quality": control.quality, "reasons": control.reasons,
                         "snr_db": round(control.snr_db, 2), "valid_fraction": round(control.valid_fraction, 3)})
    return {"rows": rows, "controls": controls}


def _summary(rows: list[dict]) -> dict:
    good = [r for r in rows if r["quality"] == "good"]
    ref = [r["reference"] for r in good if r["reference"]["ibi_mae_ms"] is not None]
    out = {"recordings": len(rows), "good": len(good)}
    if ref:
        out.update({
            "ibi_mae_ms_median": round(statistics.median(x["ibi_mae_ms"] for x in ref), 1),
            "ibi_mae_ms_max": round(max(x["ibi_mae_ms"] for x in ref), 1),
            "coverage_median": round(statistics.median(x["coverage"] for x in ref), 3),
            "rmssd_abs_error_ms_median": round(statistics.median(abs(x["rmssd_error_ms"]) for x in ref), 1),
            "rmssd_abs_error_ms_max": round(max(abs(x["rmssd_error_ms"]) for x in ref), 1),
            "rmssd_error_ms_mean": round(statistics.mean(x["rmssd_error_ms"] for x in ref), 1),
            "sdnn_abs_error_ms_median": round(statistics.median(abs(x["sdnn_error_ms"]) for x in ref), 1),
            "bpm_abs_error_median": round(statistics.median(abs(r["bpm_measured"] - r["reference"]["ecg_bpm"])
                                                            for r in good), 2),
        })
    return out


def _range(values: list[float], fmt: str) -> str:
    values = [v for v in values if v is not None]
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}" if values else "—"


def write_markdown(res: dict, path: Path) -> None:
    rows, controls = res["rows"], res["controls"]
    dev = _summary([r for r in rows if r["split"] == "development"])
    held = _summary([r for r in rows if r["split"] == "held out"])
    every = _summary(rows)
    false_good = sum(c["quality"] == "good" for c in controls)
    lines = [
        "# Heart-rate variability from camera PPG, against an ECG chest strap", "",
        f"`{res['command']}` on {res['machine']}. {len(rows)} real recordings (`../shared/data/camera-ppg-ecg`: a "
        "fingertip on a phone camera, per-frame mean R/G/B with capture times at ~30 frames/s, irregular; RR "
        "intervals from a Polar H10 worn at the same time). Each goes through `edgekd.heartrate.hrv.analyse_pulse` "
        "(what `edgekd hrv PPG.csv` runs), then `compare_with_rr`.", "",
        "**In one paragraph.** The gate calls "
        f"{every['good']} of {every['recordings']} recordings `good`; on those the beat-to-beat intervals are "
        f"{every.get('ibi_mae_ms_median')} ms from the ECG's (median over recordings of the mean absolute interval "
        f"error; worst {every.get('ibi_mae_ms_max')} ms), RMSSD is off by a median {every.get('rmssd_abs_error_ms_median')} ms "
        f"(worst {every.get('rmssd_abs_error_ms_max')} ms; mean signed {every.get('rmssd_error_ms_mean'):+} ms: the pulse's "
        "own timing jitter adds to the variability, so RMSSD reads high where the heart varies little), and the rate "
        f"is a median {every.get('bpm_abs_error_median')} bpm off. On held-out recordings 11–21 alone: {held['good']} of "
        f"{held['recordings']} `good`, interval error {held.get('ibi_mae_ms_median')} ms (worst {held.get('ibi_mae_ms_max')}), "
        f"RMSSD error {held.get('rmssd_abs_error_ms_median')} ms (worst {held.get('rmssd_abs_error_ms_max')}). "
        f"Shuffled in time (no pulse), {false_good} of {len(controls)} recordings are called `good`.", "",
        "## How it works and how it was chosen", "",
        f"- Every channel that is not clipped (≥ {hrv.CLIPPED_FRACTION:.0%} of frames at 0 or 255: two recordings "
        "saturate red entirely) goes onto a 100 Hz grid by linear interpolation, gaps over "
        f"{hrv.MAX_GAP_S * 1000:.0f} ms marked; band-pass {hrv.PULSE_BAND_HZ[0]}–{hrv.PULSE_BAND_HZ[1]} Hz; the channel "
        "with the highest spectral SNR is used.",
        "- Beat = the steepest fall of the light (the fastest rise of blood volume): the maximum of −dx/dt, parabolic "
        "sub-sample refinement, beats at least 0.6 expected periods apart (expected rate from the spectrum).",
        f"- An interval is an artefact when it is outside {hrv.IBI_RANGE_S[0]}–{hrv.IBI_RANGE_S[1]} s, spans a gap, or "
        f"differs by more than {hrv.MAX_LOCAL_DEVIATION:.0%} from the median of its 5 neighbours either side (Malik's "
        "rule); artefacts are dropped, never interpolated. RMSSD uses successive differences of two kept intervals "
        "only; SDNN the kept intervals.",
        f"- The gate: `good` needs at least {hrv.MIN_VALID_FRACTION:.0%} of the intervals kept, at least 10 kept, and a "
        f"spectral SNR of at least {hrv.MIN_SNR_DB:g} dB. Chosen on development recordings 01–10: the kept fraction "
        "separates the recordings whose intervals cannot be trusted ("
        + "; ".join(f"{r['recording']}: {1 - r['valid_fraction']:.0%} artefacts, "
                    + ("no alignment with the ECG" if r["reference"]["ibi_mae_ms"] is None
                       else f"{r['reference']['ibi_mae_ms']:.0f} ms error on the intervals it keeps")
                    for r in rows if r["split"] == "development" and r["quality"] != "good")
        + ") from the others (" + _range([1 - r["valid_fraction"] for r in rows if r["split"] == "development"
                                          and r["quality"] == "good"], "{:.0%}") + " artefacts, "
        + _range([r["reference"]["ibi_mae_ms"] for r in rows if r["split"] == "development" and r["quality"] == "good"],
                 "{:.0f}") + " ms). The SNR floor sits below every development recording with a pulse (lowest "
        + f"{min(r['snr_db'] for r in rows if r['split'] == 'development'):.1f} dB): the kept fraction does the work; "
        "the floor refuses signals with no pulse in the band.",
        "- Fiducial, band and interpolation were chosen on the development recordings by their median interval error "
        "against the ECG (table below).",
        "- Alignment with the ECG (its clock and the phone's start apart, and a pulse reaches the finger ~0.2 s after "
        "its R-peak): regular beats match at every whole-beat shift, so the shift is found on the intervals "
        "themselves (the beat lag whose RR intervals are nearest the kept pulse intervals, offset within ±10 s), then "
        "the time offset is the median over paired beats. Found offsets: "
        + ", ".join(f"{r['reference']['offset_s']:+.2f}" for r in rows if r['reference']['offset_s'] is not None)
        + " s.", "",
        "## Every recording", "",
        "| recording | split | s | channel | SNR dB | kept | quality | bpm (ECG) | interval MAE ms | coverage | "
        "RMSSD ms (ECG) | SDNN ms (ECG) |",
        "|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        c = r["reference"]
        mae = "—" if c["ibi_mae_ms"] is None else f"{c['ibi_mae_ms']:.1f}"
        lines.append(f"| {r['recording']} | {r['split']} | {r['duration_s']:.0f} | {r['channel']} | {r['snr_db']:.1f} | "
                     f"{r['valid_fraction']:.0%} | {r['quality']} | {r['bpm_measured']:.1f} ({c['ecg_bpm']}) | {mae} | "
                     f"{c['coverage']:.0%} | {r['rmssd_measured_ms']:.0f} ({c['ecg_rmssd_ms']:.0f}) | "
                     f"{r['sdnn_measured_ms']:.0f} ({c['ecg_sdnn_ms']:.0f}) |")
    lines += ["", "Interval MAE and coverage are over the ECG intervals in the recording's span whose two beats matched "
              "a pulse beat within 150 ms and whose pulse interval was kept; for `low` recordings they are shown to "
              "explain the abstention, and a caller gets no number (`edgekd hrv` prints none).", "",
              "## Summary", "", "| recordings | n | good | interval MAE ms, median (max) | coverage median | "
              "RMSSD \\|error\\| ms, median (max) | SDNN \\|error\\| ms, median | bpm \\|error\\|, median |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in (("development 01–10", dev), ("held out 11–21", held), ("all", every)):
        lines.append(f"| {name} | {s['recordings']} | {s['good']} | {s.get('ibi_mae_ms_median')} ({s.get('ibi_mae_ms_max')}) | "
                     f"{s.get('coverage_median')} | {s.get('rmssd_abs_error_ms_median')} ({s.get('rmssd_abs_error_ms_max')}) | "
                     f"{s.get('sdnn_abs_error_ms_median')} | {s.get('bpm_abs_error_median')} |")
    lines += ["", f"Negative control (samples shuffled in time): {false_good} of {len(controls)} called `good`. Each "
              "rule alone refuses all of them: kept fraction "
              + _range([c["valid_fraction"] for c in controls], "{:.0%}") + " (80 % needed), SNR "
              + _range([c["snr_db"] for c in controls], "{:.1f}") + f" dB ({hrv.MIN_SNR_DB:g} dB needed).", "",
              "## Choices on the development recordings", "",
              "`choices()` in this script: every fiducial × pulse band × interpolation through `analyse_pulse` on "
              "recordings 01–10; median (and mean) over recordings of the mean absolute interval error against the ECG, "
              f"on the {res['choices'][0]['compared_on']} recordings every variant could align with the ECG (the "
              "others are counted apart). The product uses the lowest median.", "",
              "| fiducial | pulse band Hz | interpolation | median interval MAE ms | mean | not aligned |",
              "|---|---|---|---:|---:|---:|"]
    for c in sorted(res["choices"], key=lambda c: (c["median_ms"], c["mean_ms"])):
        lines.append(f"| {c['fiducial']} | {c['pulse_band_hz'][0]}–{c['pulse_band_hz'][1]} | {c['interpolation']} | "
                     f"{c['median_ms']} | {c['mean_ms']} | {c['not_aligned']} |")
    lines += ["", "What this does not show: fingertip PPG is a much stronger pulse than a face on a webcam; this measures "
              "the beat-to-beat stage and its gate on real signals, not face-video HRV.", ""]
    path.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    from edgekd.utils.system import machine_record

    res = evaluate(Path(args.data))
    res["choices"] = choices(Path(args.data))
    res["command"] = "python benchmarks/hrv.py"
    res["machine"] = machine_record()["cpu"]
    res["settings"] = {"band_hz": hrv.PULSE_BAND_HZ, "min_snr_db": hrv.MIN_SNR_DB,
                       "min_valid_fraction": hrv.MIN_VALID_FRACTION, "max_local_deviation": hrv.MAX_LOCAL_DEVIATION}
    (HERE / "hrv.json").write_text(json.dumps(res, indent=1))
    write_markdown(res, HERE / "hrv.md")
    print(f"wrote {HERE / 'hrv.json'} and {HERE / 'hrv.md'}")


if __name__ == "__main__":
    main()
