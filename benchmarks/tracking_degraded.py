"""Why lossy frames defeat DFE: how far JPEG moves each tracker's match, and how far it moves what each one compares.

    PYTHONPATH=. python benchmarks/tracking_degraded.py --old-encoder /tmp/old-dfe/model.onnx
    # the previous (un-normalised) encoder: git show a199d53:export/dfe-encoder/model.onnx > /tmp/old-dfe/model.onnx

Two measurements on the 4 test faces × 9 skin points of the tracking suites:

1. *Match error under JPEG alone* (and, as a tried remedy, with every frame Gaussian-blurred before DFE sees it).
   Each face is shifted by a random sub-pixel offset (known truth), JPEG-encoded at quality Q, and every tracker
   (the product's own, through ``create_tracker``) is initialised on the clean frame and updated once on the shifted one. The same shifts without JPEG give the paired clean error; the difference is what
   compression costs. Failures (lost, or > 5 px) are counted, and a failed point scores 5 px (the suites' pooled rule).
2. *Sensitivity ratio* = change caused by JPEG ÷ change caused by a 1-px shift, of the thing each method compares:
   the DFE encoding at the point (relative L2), NCC's 31×31 correlation score (1 − r). A ratio near or above 1 means
   the compression artefact looks like a displacement to the matcher. The lightness contrast the normalising encoder
   divides by (local std of L in its (2m+1)² box, grey levels) is reported beside it.

Writes benchmarks/tracking/degraded.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

QUALITIES = (95, 70, 40, 20)
FAIL_PX = 5.0


def shifted(img, dx, dy):
    import cv2

    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def jpeg(img, quality):
    from edgekd.track.preprocess import jpeg_roundtrip

    return img if quality is None else jpeg_roundtrip(img, quality)


def match_errors(make, faces, shifts, quality):
    """Per point: error px after one update on the shifted (and JPEG'd) frame; failures score FAIL_PX."""
    errs, fails = [], 0
    for (name, img, _, pts), (dx, dy) in zip(faces, shifts):
        tr = make()
        tr.init(img, pts)
        moved, valid = tr.update(jpeg(shifted(img, dx, dy), quality))
        e = np.linalg.norm(np.asarray(moved) - (pts + [dx, dy]), axis=1)
        bad = ~np.asarray(valid, bool) | (e > FAIL_PX)
        fails += int(bad.sum())
        errs.extend(np.where(bad, FAIL_PX, e).tolist())
    return np.asarray(errs), fails


class Prefiltered:
    """A tracker that sees every frame Gaussian-blurred first: does removing the artefacts' high frequencies help?"""

    def __init__(self, tracker, sigma):
        self.tracker, self.sigma = tracker, sigma

    def _blur(self, img):
        import cv2

        return cv2.GaussianBlur(img, (0, 0), self.sigma)

    def init(self, img, pts):
        return self.tracker.init(self._blur(img), pts)

    def update(self, img):
        return self.tracker.update(self._blur(img))


def region(lab, p, size):
    h = size // 2
    x, y = int(round(p[0])), int(round(p[1]))
    return lab[y - h : y + h + 1, x - h : x + h + 1]


def sensitivity(encoder, faces, quality):
    """Per point: (DFE ratio, NCC ratio, local L std in grey levels)."""
    from edgekd.track.preprocess import bgr_to_lab01

    size = encoder.input_size or encoder.context  # a fixed-size export gets its own size; the centre encoding is used
    rows = []
    for _name, img, _, pts in faces:
        clean, comp, moved = (bgr_to_lab01(x) for x in (img, jpeg(img, quality), shifted(img, 1.0, 0.0)))
        for p in pts:
            regs = np.stack([region(x, p, size) for x in (clean, comp, moved)]).transpose(0, 3, 1, 2)
            out = encoder(regs)
            c = out.shape[-1] // 2
            e = out[:, :, c, c]
            d_jpeg, d_shift = np.linalg.norm(e[1] - e[0]), np.linalg.norm(e[2] - e[0])
            t = [region(x[..., 0], p, 31).ravel() for x in (clean, comp, moved)]
            r_jpeg, r_shift = (1 - np.corrcoef(t[0], t[k])[0, 1] for k in (1, 2))
            rows.append((d_jpeg / max(d_shift, 1e-12), r_jpeg / max(r_shift, 1e-12), 255 * local_std(clean[..., 0], p)))
    return np.asarray(rows)


def local_std(l, p, radius=8):
    """Mean over the 31×31 region of the box-std of L (the normalising encoder's denominator before eps)."""
    import cv2

    k = 2 * radius + 1
    reg = region(l, p, 31 + 2 * radius).astype(np.float64)
    mean = cv2.blur(reg, (k, k))
    var = np.clip(cv2.blur(reg * reg, (k, k)) - mean * mean, 0, None)
    return float(np.sqrt(var)[radius:-radius, radius:-radius].mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/faces")
    ap.add_argument("--encoder", default="edgekd/track/weights/dfe-encoder/model.onnx")
    ap.add_argument("--old-encoder", default=None, help="the previous encoder, for comparison (optional)")
    ap.add_argument("--trials", type=int, default=5, help="random shifts per face and quality")
    ap.add_argument("--prefilter", type=float, nargs="*", default=[0.5, 1.2], help="Gaussian σ px of DFE pre-filter rows")
    ap.add_argument("--out", default="benchmarks/tracking/degraded.json")
    a = ap.parse_args()
    from edgekd.track import create_tracker
    from edgekd.track.backends import load_encoder
    from edgekd.track.groundtruth import heldout_faces
    from edgekd.utils.io import write_json
    from edgekd.utils.system import machine_record

    faces = heldout_faces(a.data)
    encoders = {"dfe": a.encoder} | ({"dfe previous encoder": a.old_encoder} if a.old_encoder else {})
    makers = {"lk": lambda: create_tracker("lk"), "ncc": lambda: create_tracker("ncc"), "orb": lambda: create_tracker("orb")}
    for k, path in encoders.items():
        makers[k] = lambda path=path: create_tracker("dfe", encoder=path, threads=1)
    for sigma in a.prefilter:
        makers[f"dfe, frames Gaussian-blurred σ = {sigma:g} px first"] = (
            lambda sigma=sigma: Prefiltered(create_tracker("dfe", encoder=a.encoder, threads=1), sigma))
    rng = np.random.default_rng(0)
    trials = [rng.uniform(-3, 3, size=(len(faces), 2)) for _ in range(a.trials)]
    match = {}
    for k, make in makers.items():
        match[k] = {}
        for q in (None, *QUALITIES):
            errs, fails = zip(*(match_errors(make, faces, s, q) for s in trials))
            errs = np.concatenate(errs)
            match[k]["clean" if q is None else f"q{q}"] = {"pooled_px": float(errs.mean()), "median_px": float(np.median(errs)),
                                                          "failures": int(sum(fails)), "n": int(errs.size)}
    sens = {}
    for k, path in encoders.items():
        enc = load_encoder(path, threads=1)
        sens[k] = {}
        for q in QUALITIES:
            r = sensitivity(enc, faces, q)
            sens[k][f"q{q}"] = {"dfe_ratio_median": float(np.median(r[:, 0])), "ncc_ratio_median": float(np.median(r[:, 1])),
                                "share_dfe_ratio_above_1": float((r[:, 0] > 1).mean()),
                                "share_ncc_ratio_above_1": float((r[:, 1] > 1).mean())}
        sens[k]["local_L_std_grey_levels"] = {"median": float(np.median(r[:, 2])), "min": float(r[:, 2].min()), "max": float(r[:, 2].max())}
    write_json(a.out, {"faces": [f[0] for f in faces], "points": int(sum(len(f[3]) for f in faces)), "trials": a.trials,
                       "shift_px": "uniform ±3 in x and y, sub-pixel", "fail_px": FAIL_PX, "match": match,
                       "sensitivity": sens, "encoders": encoders, "machine": machine_record()})
    cols = ["clean", *(f"q{q}" for q in QUALITIES)]
    n = next(iter(match.values()))["clean"]["n"]
    print(f"Match error after one shift, pooled px (failures of {n}):\n")
    print("| tracker | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
    for k, row in match.items():
        print(f"| {k} | " + " | ".join(f"{row[c]['pooled_px']:.3f} ({row[c]['failures']})" for c in cols) + " |")
    print("\nSensitivity ratio (JPEG change ÷ 1-px-shift change), median over points:\n")
    print("| encoder | " + " | ".join(f"q{q} DFE / NCC" for q in QUALITIES) + " | local L std (grey levels) |\n|---|" + "---|" * (len(QUALITIES) + 1))
    for k, row in sens.items():
        s = row["local_L_std_grey_levels"]
        print(f"| {k} | " + " | ".join(f"{row[f'q{q}']['dfe_ratio_median']:.2f} / {row[f'q{q}']['ncc_ratio_median']:.2f}" for q in QUALITIES)
              + f" | {s['median']:.1f} ({s['min']:.1f}–{s['max']:.1f}) |")


if __name__ == "__main__":
    main()
