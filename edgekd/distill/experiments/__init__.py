"""The paper's experiment families, run and reported with honest statistics — one job per file:

- ``families``: the families, student variants and budgets as data; the deterministic list of runs; shards.
- ``runner``: one run's exact config, the shared teacher and IG cache, locks, resumption, ``run_family``;
  ``copy_records`` keeps finished runs' records (not weights) so a family resumes on a fresh checkout.
- ``estimate``: how long the runs left take, measured on this machine.
- ``report``: collecting finished runs, the right test against the baseline, Holm, tables (``aggregate``).
- ``robustness``: each finished run's student under the cards' corruptions (cached per run), for the report.
- ``plots``: box plots and accuracy vs compression factor.
- ``imagenet_subset``: CIFAR-trained models on ImageNet images mapped to CIFAR-10, without fine-tuning.

Pairing: in ``ablation`` and ``sweep`` every method (and every competitor student) runs on the same
seeds and the same split, so they are compared with paired tests. ``montecarlo`` trains each run on a
stratified 80 % of the budget's training set (``fraction_seed`` = the run's draw); validation split,
training set, teacher and IG maps stay fixed. :func:`aggregate` decides pairing from the runs found.
"""

from edgekd.distill.experiments.estimate import estimate_seconds
from edgekd.distill.experiments.families import (BASELINE, BUDGETS, FAMILIES, PAPER_METHODS, REFERENCE_ABLATION,
                                                 REFERENCE_CFS, VARIANTS, Family, Run, Variant, budget_overrides,
                                                 enumerate_runs, parse_shard, select_shard)
from edgekd.distill.experiments.imagenet_subset import (balanced_accuracy, evaluate_on_imagenet_subset,
                                                        load_imagenet_cifar10)
from edgekd.distill.experiments.report import (aggregate, analyse, analyse_across_cfs, collect, compare_labels,
                                              markdown_across_cfs, markdown_table)
from edgekd.distill.experiments.robustness import add_robustness, run_robustness
from edgekd.distill.experiments.runner import (_teacher_config, code_version, copy_records, ensure_teacher,
                                               execute_run, run_config, run_family, teacher_dir)

__all__ = [
    "BASELINE", "BUDGETS", "FAMILIES", "PAPER_METHODS", "REFERENCE_ABLATION", "REFERENCE_CFS", "VARIANTS", "Family",
    "Run", "Variant", "add_robustness", "aggregate", "analyse", "analyse_across_cfs", "balanced_accuracy", "budget_overrides", "collect",
    "compare_labels", "code_version", "copy_records", "markdown_across_cfs", "markdown_table", "ensure_teacher", "enumerate_runs", "estimate_seconds",
    "evaluate_on_imagenet_subset", "execute_run", "load_imagenet_cifar10", "parse_shard", "run_config", "run_family", "run_robustness",
    "select_shard", "teacher_dir", "_teacher_config",
]
