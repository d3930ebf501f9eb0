"""Fuzzing summary of every loader: mutated inputs and what became of each.

    python benchmarks/fuzz_loaders.py --n 60        # 60 mutations per target, writes benchmarks/fuzz_loaders.{json,md}

Uses the harness of tests/fuzzing.py (the test suite runs the same with fewer inputs). Outcomes:
error (one line, exit 2), ok (loaded; where the format has integrity data, equal to the original),
ok-content (loaded a format with no integrity data: the result is what the mutated file holds),
silent (a silent wrong answer), traceback, crash.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

import fuzzing  # noqa: E402

from edgekd.utils.io import write_json  # noqa: E402
from edgekd.utils.system import machine_record  # noqa: E402

OUTCOMES = ("error", "ok", "ok-content", "silent", "traceback", "crash")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = fuzzing.fuzz(n=args.n, seed=args.seed)
    summary = fuzzing.summary(rows)
    write_json(HERE / "fuzz_loaders.json", {"n_per_target": args.n, "seed": args.seed, "summary": summary,
                                            "rows": rows, "seconds": round(time.perf_counter() - t0, 1),
                                            "machine": machine_record(),
                                            "command": f"python benchmarks/fuzz_loaders.py --n {args.n} --seed {args.seed}"})
    lines = ["| target | inputs | " + " | ".join(OUTCOMES) + " |", "|---" * (len(OUTCOMES) + 2) + "|"]
    for target in fuzzing.TARGETS:
        s = summary.get(target, {})
        lines.append(f"| {target} | {sum(s.values())} | " + " | ".join(str(s.get(o, 0)) for o in OUTCOMES) + " |")
    total = {o: sum(s.get(o, 0) for s in summary.values()) for o in OUTCOMES}
    lines.append(f"| **all** | {sum(total.values())} | " + " | ".join(str(total[o]) for o in OUTCOMES) + " |")
    table = "\n".join(lines)
    (HERE / "fuzz_loaders.md").write_text(
        "# Loader fuzzing\n\n"
        f"`python benchmarks/fuzz_loaders.py --n {args.n} --seed {args.seed}` on {machine_record()['cpu']}: every loader "
        "gets valid files made by the product itself, mutated (bit flips, overwritten runs, truncation, a damaged header, "
        "random bytes, zeroed blocks), and each result is counted. `silent`, `traceback` and `crash` must stay 0 (the "
        "test suite asserts it on a smaller sample, tests/test_fuzz.py).\n\n"
        + table + "\n\n"
        "What `ok` means per target: the data loaders (png_folder, zip_folder, npz, csv) have no integrity data, so a "
        "mutation that still decodes is data as the file now holds it (`ok-content`), and one that does not is an error; "
        "edgekd model files, IG caches and exported files with their card carry checksums, so for them a changed result "
        "must be an error. state_dict is a foreign safetensors file (no checksum): a mutated tensor loads as what it "
        "holds. video (FFV1) and trajectories are content formats too.\n")
    print(table)


if __name__ == "__main__":
    main()
