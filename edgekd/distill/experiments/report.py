"""Aggregating finished runs: per-method summaries, the right test against the baseline, tables.

Runs are paired by their (seed, split, subset and draw) keys: two labels sharing at least two keys
are compared on the shared ones (a family still running has some seeds for one method only) with
the paired t-test or Wilcoxon (by a Shapiro–Wilk check of the differences); labels with no common
keys (independent draws) get Welch's t or Mann–Whitney U (``edgekd.distill.stats``). Holm corrects over the
labels compared with one baseline. A label is the method, prefixed by the student variant
for the competitors (``mnv2-x0.5/kd``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from edgekd.distill.experiments.families import BASELINE, PAPER_METHODS, REFERENCE_ABLATION
from edgekd.errors import EdgekdError


def collect(family_dir: Path) -> list[dict]:
    rows = []
    for report_path in sorted(Path(family_dir).glob("*/report.json")):
        try:
            rep = json.loads(report_path.read_text())
            cfg = rep.get("config", {})
            notes = cfg.get("notes") or {}
            variant = notes.get("variant", "truncated")
            # the family's own student: its labels are the bare methods (a competitor's carry its variant)
            main = bool(notes.get("main", variant == "truncated"))
            label = rep["method"] if main else f"{variant}/{rep['method']}"
            truncated = cfg.get("student_arch", "student") == "student"  # the paper's students: its numbers apply
            student = rep["student"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EdgekdError(f"{report_path} is incomplete or damaged ({type(exc).__name__}: {exc})",
                              "delete that run's folder and run the family again to redo it") from None
        rows.append({"run_id": report_path.parent.name, "method": label, "variant": variant, "main": main,
                     "truncated": truncated, "params": student.get("params"), "macs": student.get("macs"),
                     "cf": float(cfg.get("cf", 0)),
                     "compression_factor": rep.get("compression_factor"), "seed": rep.get("seed"),
                     "split_seed": cfg.get("split_seed"), "subset_seed": cfg.get("subset_seed", -1),
                     "fraction_seed": cfg.get("fraction_seed", 0),
                     "train_subset": cfg.get("train_subset"),
                     "test_acc": rep["student"]["test_acc"], "val_acc": rep["student"]["val_acc"],
                     "best_epoch": rep["student"].get("best_epoch"), "teacher_test_acc": rep.get("teacher", {}).get("test_acc"),
                     "student_s": rep.get("timings", {}).get("student_s"), "data": rep["data"]["name"]})
    return rows


def collect_failures(family_dir: Path) -> list[dict]:
    """Runs whose training diverged (``failed.json``): a method that fails at a budget is a result, counted."""
    from edgekd.distill.experiments.families import main_variant

    out = []
    for path in sorted(Path(family_dir).glob("*/failed.json")):
        try:
            rec = json.loads(path.read_text())
            run = rec["run"]
        except (OSError, ValueError, KeyError) as exc:
            raise EdgekdError(f"{path} is damaged ({type(exc).__name__})", "delete that run's folder and run it again")
        main = run.get("variant") == main_variant(run.get("budget", "cpu"))
        out.append({"run_id": path.parent.name, "method": run["method"] if main else f"{run['variant']}/{run['method']}",
                    "seed": run.get("seed"), "error": rec.get("error")})
    return out


def markdown_failures(failures: list[dict], rows: list[dict]) -> str:
    if not failures:
        return ""
    lines = ["", "Runs whose training diverged (counted here, not in the means above):", ""]
    for method in sorted({f["method"] for f in failures}):
        mine = [f for f in failures if f["method"] == method]
        n = len(mine) + sum(r["method"] == method for r in rows)
        seeds = ", ".join(str(f["seed"]) for f in mine)
        lines.append(f"- {method}: {len(mine)} of {n} runs (seed{'s' if len(mine) > 1 else ''} {seeds}): "
                     f"{mine[0]['error']}")
    return "\n".join(lines) + "\n"


def _pair_key(row: dict) -> tuple:
    return (row["seed"], row["split_seed"], row.get("subset_seed", -1), row.get("fraction_seed", 0), row["train_subset"])


def analyse(rows: list[dict], baseline: str = BASELINE, metric: str = "test_acc") -> list[dict]:
    """Per (cf, method): summary, and a test against the baseline at the same cf (Holm over methods)."""
    from edgekd.distill.stats import compare, holm, summarize

    out = []
    for cf in sorted({r["cf"] for r in rows}):
        at_cf = [r for r in rows if r["cf"] == cf]
        methods = sorted({r["method"] for r in at_cf}, key=lambda m: (m != baseline, PAPER_METHODS.index(m)
                                                                       if m in PAPER_METHODS else 99, m))
        base = {_pair_key(r): r[metric] for r in at_cf if r["method"] == baseline}
        entries = []
        for m in methods:
            mine = {_pair_key(r): r[metric] for r in at_cf if r["method"] == m}
            # The paper's numbers are CIFAR-10 at 4.12×; beside anything else they would mislead.
            is_reference = (abs(cf - 4.12) < 1e-6 and all(r["data"] == "cifar10" for r in at_cf)
                            and all(r.get("truncated", True) for r in at_cf if r["method"] == m))
            params = next((r.get("params") for r in at_cf if r["method"] == m and r.get("params")), None)
            # a compression factor describes the paper's truncated students only (other shapes have their own size)
            truncated = any(r.get("truncated", True) for r in at_cf if r["method"] == m)
            entry = {"cf": cf, "truncated": truncated, "method": m, "params": params,
                     "summary": summarize(list(mine.values())).to_dict(),
                     "reference": REFERENCE_ABLATION.get(m) if is_reference else None, "comparison": None}
            if m != baseline and len(base) >= 2 and len(mine) >= 2:
                a, b, paired = _matched(mine, base)
                entry["comparison"] = compare(a, b, paired=paired).to_dict()
            entries.append(entry)
        tested = [e for e in entries if e["comparison"]]
        for e, p in zip(tested, holm([e["comparison"]["p"] for e in tested])):
            e["comparison"]["p_holm"] = p
        out.extend(entries)
    return out


def _matched(a: dict, b: dict) -> tuple[list, list, bool]:
    """Values of a and b on their common pairing keys (paired), or all of each when they share fewer than two."""
    common = sorted(set(a) & set(b), key=str)
    if len(common) >= 2:
        return [a[k] for k in common], [b[k] for k in common], True
    return list(a.values()), list(b.values()), False


def compare_labels(rows: list[dict], pairs: list[tuple[str, str]], metric: str = "test_acc") -> list[dict]:
    """``a`` against ``b`` for each (a, b) present (paired where their keys match), Holm over these tests."""
    from edgekd.distill.stats import compare, holm

    out = []
    for a, b in pairs:
        ra = {(r["cf"], *_pair_key(r)): r[metric] for r in rows if r["method"] == a}
        rb = {(r["cf"], *_pair_key(r)): r[metric] for r in rows if r["method"] == b}
        if len(ra) < 2 or len(rb) < 2:
            continue
        va, vb, paired = _matched(ra, rb)
        out.append({"a": a, "b": b, "comparison": compare(va, vb, paired=paired).to_dict()})
    for e, p in zip(out, holm([e["comparison"]["p"] for e in out])):
        e["comparison"]["p_holm"] = p
    return out


def markdown_comparisons(entries: list[dict], title: str) -> str:
    if not entries:
        return ""
    lines = ["", f"{title} (Holm over these comparisons)", "",
             "| a | b | n | Δ a − b [95% CI] | test | p | p (Holm) | effect |", "|---|---|---|---|---|---|---|---|"]
    for e in entries:
        c = e["comparison"]
        lines.append(f"| {e['a']} | {e['b']} | {c['n_a']} | {_fmt_difference(c)} | {c['test']} | {c['p']:.3g} | "
                     f"{c['p_holm']:.3g} | {c['effect_name']} = {_fmt(c['effect_size'])} |")
    return "\n".join(lines) + "\n"


def analyse_across_cfs(rows: list[dict], baseline: str = BASELINE, metric: str = "test_acc") -> list[dict]:
    """Each method against the baseline over all compression factors at once, paired by (cf, seed, split):
    does the method help across the sweep? Works with one seed per cf. Holm over the methods."""
    from edgekd.distill.stats import compare, holm

    if len({r["cf"] for r in rows}) < 2:
        return []
    key = lambda r: (r["cf"], *_pair_key(r))  # noqa: E731
    base = {key(r): r[metric] for r in rows if r["method"] == baseline}
    out = []
    for m in dict.fromkeys(r["method"] for r in rows if r["method"] != baseline):
        mine = {key(r): r[metric] for r in rows if r["method"] == m}
        common = sorted(set(mine) & set(base))
        if len(common) < 2:
            continue
        c = compare([mine[k] for k in common], [base[k] for k in common], paired=True).to_dict()
        out.append({"method": m, "pairs": len(common), "cfs": sorted({k[0] for k in common}), "comparison": c})
    for e, p in zip(out, holm([e["comparison"]["p"] for e in out])):
        e["comparison"]["p_holm"] = p
    return out


def markdown_across_cfs(entries: list[dict]) -> str:
    if not entries:
        return ""
    lines = ["", f"Across compression factors (paired by cf and seed; Holm over methods): {BASELINE} vs each method", "",
             "| method | pairs | Δ vs student [95% CI] | test | p | p (Holm) | effect |", "|---|---|---|---|---|---|---|"]
    for e in entries:
        c = e["comparison"]
        lines.append(f"| {e['method']} | {e['pairs']} | {_fmt_difference(c)} | {c['test']} | {c['p']:.3g} | "
                     f"{c['p_holm']:.3g} | {c['effect_name']} = {_fmt(c['effect_size'])} |")
    return "\n".join(lines) + "\n"


def _fmt_difference(c: dict) -> str:
    """'+1.23 [-0.40, +2.86]': the mean difference and, where there is one, its 95% CI."""
    ci = c.get("diff_ci")
    return f"{c['mean_difference']:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")


def _fmt_cf(entry: dict) -> str:
    return f"{entry['cf']:g}×" if entry.get("truncated", True) else "–"


def _fmt(x, digits=2):
    return "–" if x is None or x != x else f"{x:.{digits}f}"


def markdown_table(analysis: list[dict], title: str) -> str:
    lines = [f"### {title}", "",
             "| cf | method | params | n | test acc mean ± sd | 95% CI | paper (mean of 10) | Δ vs student [95% CI] | test | p | p (Holm) | effect |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in analysis:
        s, c = e["summary"], e["comparison"]
        params = f"{e['params'] / 1e3:.0f} k" if e.get("params") else "–"
        row = [_fmt_cf(e), e["method"], params, str(s["n"]), f"{_fmt(s['mean'])} ± {_fmt(s['sd'])}",
               f"[{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}]", _fmt(e["reference"])]
        if c:
            base_n = next((b["summary"]["n"] for b in analysis if b["cf"] == e["cf"] and b["method"] == BASELINE), None)
            shared = c["paired"] and (c["n_a"] != s["n"] or c["n_a"] != base_n)
            test = f"{c['test']} on {c['n_a']} shared seeds" if shared else c["test"]
            row += [_fmt_difference(c), test, f"{c['p']:.3g}", f"{c['p_holm']:.3g}",
                    f"{c['effect_name']} = {_fmt(c['effect_size'])}"]
        else:
            row += ["–"] * 5
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def markdown_robustness(rows: list[dict], corruptions: list[str], loss: list[dict]) -> str:
    """Per method: accuracy clean and under each corruption (mean ± sd over runs), and its mean loss under
    corruption tested against the baseline's, paired by seed (Holm over methods)."""
    from edgekd.distill.stats import summarize

    if not corruptions:
        return ""
    n_images = sorted({r["robustness_images"] for r in rows})
    lines = ["", f"### Under corruption: {'/'.join(f'{n:,}' for n in n_images)} evenly spaced test images per run "
             "(all of them when that is the whole split), PyTorch (`edgekd.data.corruptions`, the cards' corruptions)",
             "",
             "| cf | method | n | clean | " + " | ".join(corruptions) + " | loss, pp (clean − mean corrupted) | "
             "Δ loss vs student [95% CI] | test | p (Holm) |",
             "|---|---|---|" + "---|" * (len(corruptions) + 1) + "---|---|---|---|"]
    for e in loss:
        mine = [r for r in rows if r["cf"] == e["cf"] and r["method"] == e["method"]]

        def cell(key: str) -> str:
            s = summarize([r[key] for r in mine]).to_dict()
            return f"{_fmt(s['mean'])} ± {_fmt(s['sd'])}"

        c = e["comparison"]
        tail = ([_fmt_difference(c), c["test"], f"{c['p_holm']:.3g}"] if c else ["–"] * 3)
        lines.append("| " + " | ".join([_fmt_cf(e), e["method"], str(len(mine)), cell("acc_clean"),
                                        *[cell(f"acc_{k}") for k in corruptions], cell("corruption_loss"), *tail]) + " |")
    return "\n".join(lines) + "\n"


def aggregate(family_dir: str | Path, plots: bool = True, robustness_images: int = 0, log=print) -> dict:
    """results.json, results.csv (one row per run), results.md and plots in ``family_dir``; with
    ``robustness_images`` > 0 also every run's accuracy under corruption (cached per run)."""
    from edgekd.distill.experiments.robustness import add_robustness
    from edgekd.utils.io import write_json

    family_dir = Path(family_dir)
    rows, failures = collect(family_dir), collect_failures(family_dir)
    if not rows:
        raise EdgekdError(f"no finished runs (*/report.json) in {family_dir}"
                          + (f"; {len(failures)} diverged (*/failed.json)" if failures else ""),
                          "run the experiment first")
    analysis = analyse(rows)
    corruptions = add_robustness(rows, family_dir, robustness_images, log=log)
    loss = analyse(rows, metric="corruption_loss") if corruptions else []
    with open(family_dir / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    across = analyse_across_cfs([r for r in rows if r["main"]])
    competitors = sorted({r["method"] for r in rows if not r["main"]})
    versus = compare_labels(rows, [(m, c) for m in ("kd+ig", "kd") for c in competitors])
    md = (markdown_table(analysis, f"{family_dir.name}: {rows[0]['data']}, {len(rows)} runs") + markdown_across_cfs(across)
          + markdown_comparisons(versus, "The paper's students against students of other shapes, same seeds and data")
          + markdown_failures(failures, rows) + markdown_robustness(rows, corruptions, loss))
    (family_dir / "results.md").write_text(md)
    from edgekd.distill.experiments.plots import plot
    from edgekd.distill.experiments.runner import code_version

    figures = plot(analysis, rows, family_dir) if plots else []
    result = {"family_dir": str(family_dir), "runs": len(rows), "analysis": analysis, "across_cfs": across,
              "versus_competitors": versus, "failed": failures, "robustness": loss, "figures": figures, "code": code_version()}
    write_json(family_dir / "results.json", result)
    return {**result, "markdown": md}


