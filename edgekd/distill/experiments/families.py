"""The experiment families and budgets as data, and the deterministic list of runs they make.

A *run* is one compress configuration (export off): a family, a student variant, a method,
a compression factor and a seed. Runs have stable ids and are enumerated in a fixed order,
so ``--shard i/n`` (every run whose index % n == i) splits a family without overlap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edgekd.errors import EdgekdError

# Compression factors of the reference table (DESIGN.md): features[:-L] for L = 3, 5, …, 17.
REFERENCE_CFS = (2.19, 4.12, 7.29, 12.04, 28.97, 54.59, 139.43, 1121.71)
# The paper's ablation means over 10 runs at 4.12× (best-of-10 selection on the test set, see DESIGN.md).
REFERENCE_ABLATION = {"student": 91.18, "kd": 91.62, "ig": 91.35, "kd+ig": 92.02, "kd+at": 91.75, "kd+ig+at": 91.86}
PAPER_METHODS = ("student", "kd", "ig", "kd+ig", "kd+at", "kd+ig+at")
BASELINE = "student"


@dataclass(frozen=True)
class Variant:
    """A student architecture the families train: the paper's truncation, or a competitor of about its size."""

    name: str
    arch: str
    kwargs: dict = field(default_factory=dict)
    description: str = ""


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("truncated", "student", {}, "the paper's truncated MobileNetV2 (features[:-L] + linear); cf picks L"),
    Variant("mnv2-x0.5", "mobilenetv2_x0_5", {}, "width-scaled MobileNetV2 ×0.5, 0.70 M parameters, 28 M MACs"),
    Variant("resnet32", "resnet_cifar", {"depth": 32}, "CIFAR ResNet-32, 0.47 M parameters, 69 M MACs"),
    # students chosen for latency (benchmarks/students.md): less compute at about the 4.12× student's size
    Variant("trunc-L5-s2", "student", {"blocks_removed": 5, "stage2_stride": 2},
            "the 4.12× student at half resolution from stage 2: 0.54 M parameters, 17 M MACs"),
    Variant("trunc-L5-ew0.5", "student", {"blocks_removed": 5, "early_width": 0.5},
            "the 4.12× student with its 32×32 blocks at half width: 0.50 M parameters, 40 M MACs"),
    Variant("trunc-L3-s2", "student", {"blocks_removed": 3, "stage2_stride": 2},
            "the 2.19× student at half resolution from stage 2: 1.02 M parameters, 20 M MACs"),
    Variant("trunc-L7", "student", {"blocks_removed": 7}, "the 7.29× student: 0.31 M parameters, 44 M MACs"),
    Variant("resnet20", "resnet_cifar", {"depth": 20}, "CIFAR ResNet-20, 0.27 M parameters, 41 M MACs"),
    Variant("resnet8", "resnet_cifar", {"depth": 8}, "CIFAR ResNet-8, 78 k parameters, 12.5 M MACs"),
    # the teacher's own shape, narrower: dense 3×3 convolutions, which INT8 runtimes run near their peak
    Variant("airbench-x0.25", "airbench", {"width_mult": 0.25}, "airbench at widths 16/64/64: 0.13 M parameters, 10 M MACs"),
    Variant("airbench-x0.375", "airbench", {"width_mult": 0.375},
            "airbench at widths 24/96/96: 0.28 M parameters, 20 M MACs"),
    Variant("airbench-x0.5", "airbench", {"width_mult": 0.5}, "airbench at widths 32/128/128: 0.50 M parameters, 33 M MACs"),
)}
DEFAULT_VARIANT = "truncated"


@dataclass(frozen=True)
class Family:
    name: str
    methods: tuple[str, ...]
    cfs: tuple[float, ...]
    default_seeds: dict[str, int]  # budget → seeds (runs per method)
    train_fraction: float = 0.0  # montecarlo: fraction of the training pool drawn per run
    competitors: tuple[tuple[str, str], ...] = ()  # (variant, method) run beside the truncated students
    description: str = ""


FAMILIES: dict[str, Family] = {
    "ablation": Family("ablation", PAPER_METHODS, (4.12,), {"cpu": 5, "paper": 5, "smoke": 2},
                       competitors=(("mnv2-x0.5", "student"), ("mnv2-x0.5", "kd"), ("resnet32", "student"),
                                    ("resnet32", "kd")),
                       description="every mix of KD, IG, AT at 4.12×, and students of other shapes of about that "
                                   "size; same seeds everywhere (paired)"),
    "montecarlo": Family("montecarlo", ("student", "kd", "ig", "kd+ig"), (4.12,), {"cpu": 5, "paper": 10, "smoke": 2},
                         train_fraction=0.8, description="each run on its own stratified 80% of the training pool"),
    # KD from the same teacher for students chosen by latency; the ablation's kd runs (4.12×, MobileNetV2 ×0.5,
    # ResNet-32) share its seeds and budget, so benchmarks/students.py pairs them with these.
    "students": Family("students", (), (4.12,), {"cpu": 3, "paper": 3, "smoke": 1},
                       competitors=tuple((v, "kd") for v in ("trunc-L5-s2", "trunc-L5-ew0.5", "trunc-L3-s2", "trunc-L7",
                                                             "resnet20", "resnet8", "airbench-x0.25",
                                                             "airbench-x0.375", "airbench-x0.5")),
                       description="KD students of other shapes and compute for the accuracy–latency front"),
    "sweep": Family("sweep", ("student", "kd", "ig", "kd+ig"), REFERENCE_CFS, {"cpu": 1, "paper": 3, "smoke": 1},
                    description="accuracy vs compression factor 2.19× … 1121.71×"),
}

# Budgets: overrides on top of a compress preset. "cpu" is sized so the ablation (50 runs) finishes in about
# three hours of this 2-core machine with two shards of one thread (benchmarks/experiments.md states it);
# its teacher is the shipped airbench one (93–94 % on CIFAR-10), trained once, never per family.
BUDGETS: dict[str, dict[str, Any]] = {
    "cpu": dict(preset="quick", overrides=dict(
        train_subset=5000, val_fraction=0.1, val_subset=2000, epochs=6, ig_steps=32, threads=1, batch_size=64,
        lr=2e-3, amp="auto", precise_bn_images=1024, device="cpu", teacher_arch="airbench", teacher_epochs=16)),
    "paper": dict(preset="paper", overrides=dict(device="auto", pretrained_teacher=False)),
    # The paper's question at convergence: the cpu preset's fast recipe (airbench's, KD targets cached) on all
    # 45,000 training images, on the student that converges on this machine (airbench at half width: 91.4 % from
    # labels and 91.7 % with KD at 16 epochs, benchmarks/students_converged.md, the paper's 91.2–92.0 % regime);
    # ~20 min a run on one thread, two shards on the 2 cores. AT needs the teacher online (cached targets cannot
    # serve it), 42 % more per epoch; DIST at the recipe's rate diverged (seed 0: validation 39 % at epoch 2, 5 % at
    # epoch 3, then NaN), so a modern logit loss waits for a rate chosen on validation for it. Students start at
    # random, as the paper's do: one started from the teacher's channels (the cpu preset's) already carries the
    # teacher's function, which would confound what KD and IG add.
    "converged": dict(preset="cpu", variant="airbench-x0.5", methods=("student", "kd", "ig", "kd+ig"),
                      overrides=dict(epochs=16, threads=1, device="cpu", student_init="random")),
    # Checks the plumbing end to end in a minute or two (e.g. on digits); its numbers mean nothing.
    "smoke": dict(preset="quick", overrides=dict(
        train_subset=300, val_fraction=0.1, epochs=2, teacher_epochs=2, ig_steps=4, threads=1, device="cpu",
        pretrained_teacher=False)),
}
# Per-family changes to the cpu budget (the sweep has 4× as many runs; most of its students are tiny).
CPU_FAMILY_OVERRIDES: dict[str, dict] = {"sweep": dict(epochs=6)}


@dataclass
class Run:
    index: int
    id: str
    family: str
    method: str
    cf: float
    seed: int
    split_seed: int
    budget: str = "cpu"
    overrides: dict = field(default_factory=dict)
    variant: str = DEFAULT_VARIANT

    @property
    def main(self) -> bool:
        """The family's own student under this budget (a competitor otherwise)."""
        return self.variant == main_variant(self.budget)

    @property
    def label(self) -> str:
        """What tables call it: the method, prefixed by the student variant when it is a competitor."""
        return self.method if self.main else f"{self.variant}/{self.method}"

    def to_dict(self) -> dict:
        return asdict(self)


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise EdgekdError(f"bad shard {text!r}", "write it as i/n, e.g. 0/2 and 1/2 for two processes") from None
    if n < 1 or not 0 <= i < n:
        raise EdgekdError(f"bad shard {text!r}: need 0 ≤ i < n", "e.g. --shard 0/2 and --shard 1/2")
    return i, n


def select_shard(runs: list[Run], shard: tuple[int, int]) -> list[Run]:
    i, n = shard
    return [r for r in runs if r.index % n == i]


def main_variant(budget: str) -> str:
    """The student a budget's families train (the paper's truncation unless the budget names another)."""
    return BUDGETS.get(budget, {}).get("variant", DEFAULT_VARIANT)


def budget_overrides(family: str, budget: str, extra: dict | None = None) -> tuple[str, dict]:
    if budget not in BUDGETS:
        raise EdgekdError(f"unknown budget {budget!r}", f"choose one of: {', '.join(BUDGETS)}")
    b = BUDGETS[budget]
    overrides = dict(b["overrides"])
    if budget == "cpu":
        overrides.update(CPU_FAMILY_OVERRIDES.get(family, {}))
    overrides.update(extra or {})
    return b["preset"], overrides


def enumerate_runs(family: str, seeds: int | None = None, budget: str = "cpu", cfs: list[float] | None = None,
                   methods: list[str] | None = None, paired_subsets: bool = True, overrides: dict | None = None,
                   competitors: bool = True, variants: list[str] | None = None) -> list[Run]:
    """All runs of a family in a fixed order (cf, then seed, then method, then the competitors);
    ``variants`` keeps only the competitors of those student variants."""
    if family not in FAMILIES:
        raise EdgekdError(f"unknown experiment family {family!r}", f"choose one of: {', '.join(FAMILIES)}")
    from edgekd.distill.config import parse_method

    fam = FAMILIES[family]
    _, overrides = budget_overrides(family, budget, overrides)
    n = seeds if seeds is not None else fam.default_seeds.get(budget, fam.default_seeds["cpu"])
    if n < 1:
        raise EdgekdError(f"--seeds/--runs must be ≥ 1, got {n}")
    budget_methods = BUDGETS[budget].get("methods") if family == "ablation" else None
    chosen = list(methods or budget_methods or fam.methods)
    for m in chosen:
        parse_method(m)
    main = main_variant(budget)
    entries = [(main, m) for m in chosen]
    if variants:
        known = sorted({v for v, _ in fam.competitors})
        unknown = [v for v in variants if v not in known]
        if unknown:
            raise EdgekdError(f"family {family!r} has no student variant {', '.join(unknown)}",
                              f"choose from: {', '.join(known) or '(it has none)'}")
    if competitors and not methods and main == DEFAULT_VARIANT:  # competitors are sized against the truncation
        entries += [e for e in fam.competitors if not variants or e[0] in variants]
    runs: list[Run] = []
    for cf in (cfs or fam.cfs):
        for s in range(n):
            for ei, (variant, method) in enumerate(entries):
                tag = method.replace("+", "-") + ("" if variant == DEFAULT_VARIANT else f"_{variant}")
                size = f"_cf{cf:g}" if variant == DEFAULT_VARIANT else ""
                if fam.train_fraction:
                    # Paired: draw k is the same images for every method; unpaired: each method its own draws.
                    split_seed = s if paired_subsets else 1000 * (ei + 1) + s
                    seed = split_seed
                    run_id = f"{tag}{size}_draw{split_seed}"
                else:
                    split_seed, seed = 0, s
                    run_id = f"{tag}{size}_seed{seed}"
                runs.append(Run(len(runs), run_id, family, method, float(cf), seed, split_seed, budget,
                                dict(overrides), variant))
    return runs
