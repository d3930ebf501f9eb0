"""Why TFLite INT8 failed the test suite's gate on one CPU and not another — and that the fix holds.

    python benchmarks/export_robustness.py --seeds 5     # writes benchmarks/export_robustness.{json,md}

On an Intel Xeon the suite's export fixture (a 54.59× student trained 4 epochs on digits, ~55 % accurate)
lost 4.46 pp in TFLite INT8; on AMD it passed. Floating-point training differs between CPUs (oneDNN picks
other kernels), so each machine trains a slightly different model; this script stands in for "another CPU"
with other training seeds. For each seed and each fixture it records every TFLite INT8 candidate's
agreement with PyTorch and accuracy drop on validation (195 images) and test (359), which candidate the
product's rule keeps, and whether every format passes a 3 pp gate — through ``export_classifier``, the
function `edgekd compress` and `edgekd export` call.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

FIXTURES = {
    "weak (the old fixture: student cf 54.59, 4 epochs)": dict(arch="student", kwargs={"cf": 54.59}, epochs=4, lr=3e-3),
    "trained (the new fixture: resnet8, 12 epochs)": dict(arch="resnet8", kwargs={}, epochs=12, lr=1e-2),
}


READING = """
Reading (N = 5 seeds per fixture, one machine):
- The failure was the fixture, not a CPU's kernels: the old fixture (a 41 k-parameter truncated student trained 4 epochs,
  ~50 % accurate, its logits close together) loses 0.3–4.5 pp in TFLite INT8 depending on the seed alone, and two
  of five seeds fail a 3 pp gate *on this AMD machine* — seed 2 reproduces the issue's Intel figure (+4.46 pp)
  exactly. Which CPU trained it only decides which of these models one gets (oneDNN picks other kernels, so
  training diverges in the last bits and then everywhere).
- The suite's fixture is now a ResNet-8 (78 k parameters) trained 12 epochs (93–96 %): every seed passes with a 0.0–0.6 pp drop and
  99.4–100 % agreement, and the tests assert what must hold on any CPU (every format scored on the whole test split,
  agreement and the gate computed by the product) rather than one machine's numbers.
- The product's rule (keep the TFLite INT8 candidate with the best validation agreement among those within the
  gate) picks PT2E min-max where ai-edge-quantizer is worse on validation; where validation cannot separate them
  (195 images) it keeps ai-edge-quantizer. On the weak models that choice can still be wrong on test (seed 2):
  validation is small, and a model that fragile is flagged by the gate rather than shipped.
"""


def main() -> None:
    import torch

    from edgekd.convert.classifier import GateFailed, LabelledImages, export_classifier
    from edgekd.convert.spec import InputSpec
    from edgekd.data import load_dataset
    from edgekd.distill.trainer import TrainConfig, train
    from edgekd.models import create_model
    from edgekd.utils.io import write_json
    from edgekd.utils.system import machine_record

    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    d = load_dataset("digits")
    val = LabelledImages(d.train.images[1100:1295], d.train.labels[1100:1295], "validation")
    test = LabelledImages(d.test.images, d.test.labels, "test")
    rows = []
    for label, fx in FIXTURES.items():
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            model = create_model(fx["arch"], **fx["kwargs"])
            train(model, d.train.subset(np.arange(1100)), d.train.subset(np.arange(1100, 1295)), d.mean, d.std,
                  TrainConfig(epochs=fx["epochs"], lr=fx["lr"], precise_bn_images=512, seed=seed), show_progress=False)
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    card = export_classifier(model.eval(), InputSpec(mean=d.mean, std=d.std), Path(tmp), d.train.images[:256],
                                             val, test, formats="all", gate_pp=3.0, log=lambda m: None)
                    passed = True
                except GateFailed:
                    import json

                    card, passed = json.loads((Path(tmp) / "card.json").read_text()), False
            f = card["formats"]
            rows.append({"fixture": label, "seed": seed, "torch_test_acc": card["reference"]["test_acc"], "passed": passed,
                         "tflite_int8": {k: f["tflite-int8"].get(k) for k in ("method", "method_choice", "drop_pp", "float_modules")}
                         | {"agreement": f["tflite-int8"]["parity"]["top1_agreement"]},
                         "onnx_int8": {"drop_pp": f["onnx-int8"]["drop_pp"],
                                       "agreement": f["onnx-int8"]["parity"]["top1_agreement"]}})
            print(rows[-1], flush=True)
    write_json(HERE / "export_robustness.json", {"rows": rows, "machine": machine_record(),
                                                 "command": f"python benchmarks/export_robustness.py --seeds {args.seeds}"})
    lines = ["| fixture | seed | torch test % | TFLite INT8 kept | its test drop pp | agreement | ai-edge-quantizer on validation: drop / agreement | ONNX INT8 drop | all formats within 3 pp |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t, c = r["tflite_int8"], r["tflite_int8"]["method_choice"]
        aeq = c.get("ai-edge-quantizer", {})
        lines.append(f"| {r['fixture']} | {r['seed']} | {r['torch_test_acc']:.1f} | {t['method']}"
                     f"{' + float ' + ','.join(t['float_modules']) if t.get('float_modules') else ''} | {t['drop_pp']:+.2f} | "
                     f"{100 * t['agreement']:.1f} % | {aeq.get('drop_pp', float('nan')):+.2f} / {100 * aeq.get('agreement', float('nan')):.1f} % | "
                     f"{r['onnx_int8']['drop_pp']:+.2f} | {'yes' if r['passed'] else 'NO'} |")
    m = machine_record()
    (HERE / "export_robustness.md").write_text(
        "# TFLite INT8 across \"CPUs\": other training seeds stand in for other machines\n\n"
        f"`python benchmarks/export_robustness.py --seeds {args.seeds}` on {m['cpu']}. See the script's docstring for "
        "what is measured; the Intel figure (−4.46 pp) is the issue's, not measured here.\n\n" + "\n".join(lines) + "\n"
        + READING)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
