"""Statistics for comparing training methods over repeated runs.

The reference code reported best-of-10 and ran a paired test on unpaired runs. Here:
runs are *paired* only when both methods were run on the same seeds and splits (the
caller says so by passing aligned arrays to :func:`compare`); then the paired t-test
or, when the differences do not look normal (Shapiro–Wilk p < 0.05), the Wilcoxon
signed-rank test; otherwise Welch's t-test (or Mann–Whitney U when a sample is not
normal). Effect sizes: Cohen's d_z (mean difference ÷ sd of differences) for paired
runs, Cohen's d with the pooled sd for unpaired ones. Many methods against one
baseline are corrected with Holm's step-down procedure.

numpy and scipy are imported inside the functions so that importing edgekd stays light.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

NORMALITY_ALPHA = 0.05


@dataclass
class Summary:
    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    min: float
    max: float

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean, sample sd (ddof=1) and the t-based confidence interval of the mean."""
    import numpy as np
    from scipy import stats

    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        nan = float("nan")
        return Summary(0, nan, nan, nan, nan, nan, nan)
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, float("nan"), float("nan"), float("nan"), mean, mean)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half, float(x.min()), float(x.max()))


def shapiro_p(values: Sequence[float]) -> float | None:
    """Shapiro–Wilk p-value; None below 3 values (the test is undefined) or for constant data."""
    import numpy as np
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0:
        return None
    return float(stats.shapiro(x).pvalue)


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float:
    """(mean a − mean b) ÷ pooled sd (ddof=1)."""
    import numpy as np

    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = len(a), len(b)
    pooled = math.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    return float((a.mean() - b.mean()) / pooled) if pooled > 0 else float("nan")


def cohens_dz(a: Sequence[float], b: Sequence[float]) -> float:
    """Paired effect size: mean of (a − b) ÷ sd of (a − b)."""
    import numpy as np

    d = np.asarray(a, float) - np.asarray(b, float)
    sd = d.std(ddof=1)
    return float(d.mean() / sd) if sd > 0 else float("nan")


@dataclass
class Comparison:
    paired: bool
    test: str  # "paired t" | "wilcoxon" | "welch t" | "mann-whitney u"
    statistic: float
    p: float
    effect_size: float
    effect_name: str  # "d_z" | "d"
    mean_difference: float
    normality_p: float | None
    n_a: int
    n_b: int
    p_holm: float | None = None
    diff_ci: tuple[float, float] | None = None  # t-based 95 % CI of the mean difference (Welch df when unpaired)

    def to_dict(self) -> dict:
        return asdict(self)


def compare(a: Sequence[float], b: Sequence[float], paired: bool, test: str = "auto") -> Comparison:
    """Two-sided test of method ``a`` against method ``b``.

    ``paired=True`` requires ``a[i]`` and ``b[i]`` to come from the same seed and split.
    ``test="auto"`` chooses the t-test when Shapiro–Wilk does not reject normality (of the
    differences when paired, of both samples otherwise) and the rank test when it does.
    """
    import numpy as np
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if paired and len(a) != len(b):
        raise ValueError(f"paired comparison needs equal lengths, got {len(a)} and {len(b)}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("a comparison needs at least 2 runs per method")
    if paired:
        diff = a - b
        normal_p = shapiro_p(diff)
        if test == "auto":
            test = "wilcoxon" if normal_p is not None and normal_p < NORMALITY_ALPHA else "paired t"
        if test == "paired t":
            r = stats.ttest_rel(a, b)
        elif test == "wilcoxon":
            r = stats.wilcoxon(a, b) if np.any(diff != 0) else None
        else:
            raise ValueError(f"unknown paired test {test!r}")
        stat, p = (float(r.statistic), float(r.pvalue)) if r is not None else (0.0, 1.0)
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        half = float(stats.t.ppf(0.975, len(diff) - 1) * se)
        return Comparison(True, test, stat, p, cohens_dz(a, b), "d_z", float(diff.mean()), normal_p, len(a), len(b),
                          diff_ci=(float(diff.mean()) - half, float(diff.mean()) + half))
    pa, pb = shapiro_p(a), shapiro_p(b)
    normal_p = min(p for p in (pa, pb) if p is not None) if (pa is not None or pb is not None) else None
    if test == "auto":
        test = "mann-whitney u" if normal_p is not None and normal_p < NORMALITY_ALPHA else "welch t"
    if test == "welch t":
        r = stats.ttest_ind(a, b, equal_var=False)
    elif test == "mann-whitney u":
        r = stats.mannwhitneyu(a, b, alternative="two-sided")
    else:
        raise ValueError(f"unknown unpaired test {test!r}")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if va + vb > 0 else float(len(a) + len(b) - 2)
    half = float(stats.t.ppf(0.975, df) * np.sqrt(va + vb))
    m = float(a.mean() - b.mean())
    return Comparison(False, test, float(r.statistic), float(r.pvalue), cohens_d(a, b), "d", m, normal_p, len(a), len(b),
                      diff_ci=(m - half, m + half))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order (monotone, capped at 1)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted
