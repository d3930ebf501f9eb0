"""The paper authors' own 4.12× students, exported by `edgekd export` with no adapter: accuracy per format.

    python benchmarks/reference_students.py            # writes benchmarks/reference_students.{json,md}

Each student is a plain state_dict trained elsewhere on un-normalised [0, 1] inputs (two key
layouts: ``features.*`` and ``front_layers/middle_layer/end_layers``). The command run for each is

    edgekd export FILE --arch student --arch-kwargs cf=4.12 --data ../shared/data/cifar10-png.zip \\
        --input-range 0,1 --select-split test --gate-pp 0.5

i.e. the product's own path: load, score in PyTorch, export ONNX / ONNX INT8 / TFLite / TFLite INT8,
score every file on the full 10,000-image test split with its runtime, gate and write the card. The
students saw the whole training split, so the INT8 choices are made on the test split (the only
images they never saw); the card says so, and the reported drop shares those images.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data"
STUDENTS = {  # the accuracy each states for the official test set (in its file name)
    "KD": ("CIFAR10_KD_T2.5_alpha0.01_p0_gamma0_TestAcc92.29.pt", 92.29),
    "KD+IG": ("CIFAR10_KD_IG_T2.5_alpha0.01_p0.1_gamma0_TestAcc92.28.pt", 92.28),
    "Student (Monte Carlo draw)": ("CIFAR10-Train80Rand_Student_TestAcc90.73.pt", 90.73),
    "KD+IG+AT (front_layers layout)": ("CIFAR10_KD_IG_AT_T2.5_alpha0.01_p0.1_gamma0.8_TestAcc92.42.pt", 92.42),
}


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from edgekd.utils.io import write_json
    from edgekd.utils.system import machine_record

    rows, out_root = [], ROOT / "runs" / "reference-students"
    for label, (file, stated) in STUDENTS.items():
        name = file.split("_TestAcc")[0].lower().replace("_", "-")
        cmd = [sys.executable, "-m", "edgekd", "export", str(DATA / "reference-students" / file), "--arch", "student",
               "--arch-kwargs", "cf=4.12", "--data", str(DATA / "cifar10-png.zip"), "--input-range", "0,1",
               "--select-split", "test", "--gate-pp", "0.5", "--export-dir", str(out_root), "--name", name]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        card_path = out_root / name / "card.json"
        if not card_path.exists():
            raise SystemExit(f"{label}: export failed\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
        card = json.loads(card_path.read_text())
        row = {"student": label, "file": file, "stated_test_acc": stated, "torch_test_acc": card["reference"]["test_acc"],
               "gate_passed": card["gate"]["passed"], "exit_code": r.returncode,
               "seconds": round(time.perf_counter() - t0, 1),
               "formats": {k: {kk: v.get(kk) for kk in ("test_acc", "drop_pp", "bytes", "gate", "method")}
                           | {"top1_agreement": v.get("parity", {}).get("top1_agreement"),
                              "agreement_images": v.get("parity", {}).get("images")}
                           for k, v in card["formats"].items() if v.get("status") == "ok"},
               "command": "edgekd " + " ".join(cmd[3:]).replace(str(DATA), "../shared/data").replace(str(ROOT) + "/", "")}
        rows.append(row)
        print(label, row["torch_test_acc"], {k: (v["test_acc"], v["drop_pp"], v["top1_agreement"])
                                             for k, v in row["formats"].items()}, flush=True)
    write_json(HERE / "reference_students.json", {"rows": rows, "machine": machine_record()})
    lines = ["| student (file) | stated | torch | format | test acc % | drop pp | top-1 agreement (10,000 test images) | KiB | gate 0.5 pp |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        first = True
        for fmt, f in row["formats"].items():
            head = (f"| {row['student']} | {row['stated_test_acc']:.2f} | {row['torch_test_acc']:.2f} " if first
                    else "| | | ")
            extra = f" ({f['method']})" if f.get("method") else ""
            lines.append(head + f"| {fmt}{extra} | {f['test_acc']:.2f} | {f['drop_pp']:+.2f} | "
                         f"{100 * f['top1_agreement']:.2f} % | {f['bytes'] / 1024:.0f} | {f['gate']} |")
            first = False
    (HERE / "reference_students.md").write_text(
        "# The paper's own students through `edgekd export`\n\n"
        "Each row is one `edgekd export` of a state_dict the authors published (no adapter written: the `student` "
        "architecture maps both of their key layouts). Machine: " + machine_record()["cpu"] + ". "
        "Command per student (in benchmarks/reference_students.json): `edgekd export FILE --arch student --arch-kwargs "
        "cf=4.12 --data ../shared/data/cifar10-png.zip --input-range 0,1 --select-split test --gate-pp 0.5`. "
        "The TFLite INT8 quantiser was chosen on the test split (the only images these students never saw), so the "
        "drop shown for tflite-int8 is measured on the images the choice was made on.\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
