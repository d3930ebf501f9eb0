"""Choosing the student for a latency budget, and checking that the shipped file meets it.

1. Latency of every candidate's INT8 file: measured here, or read from a table the device wrote.
2. Candidates over the budget are out; a budget nobody meets is an error naming the fastest.
3. Of those left, the ones not dominated in (latency ↓, MACs ↑, parameters ↑) are the shortlist —
   capacity at a latency — and the ``proxy_candidates`` largest by MACs (round-robin over the
   families, so one family cannot fill it) get a short proxy run: plain training on a small
   stratified subset, scored on the validation split, never on test.
4. The best proxy score is distilled with the full run's settings; ties go to the faster.
5. After export, the shipped file is measured again with the same protocol (when the table was
   measured here) and the run fails loudly if it is over the budget.

``edgekd compress`` calls :func:`choose_for_run` before training and :func:`ship_within_budget`
after export; the distillation itself does not know a budget exists.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edgekd.errors import EdgekdError
from edgekd.select.candidates import Candidate
from edgekd.select.survey import survey
from edgekd.utils.io import read_json, write_json

STAT = "p50_ms"


class LatencyGateFailed(EdgekdError):
    pass


def latency_of(row: dict, fmt: str) -> float | None:
    cell = row.get(fmt, {})
    return cell.get(STAT) if cell.get("status") == "ok" else None


def pareto(rows: list[dict], objectives) -> list[dict]:
    """Rows no other row beats on every objective at once (each a function of a row; higher is better)."""
    values = [tuple(f(r) for f in objectives) for r in rows]
    return [r for r, v in zip(rows, values)
            if not any(all(o >= x for o, x in zip(w, v)) and w != v for w in values)]


def capacity_front(rows: list[dict], fmt: str) -> list[dict]:
    """Rows no other row beats on latency, MACs and parameters at once."""
    timed = [r for r in rows if latency_of(r, fmt) is not None]
    return pareto(timed, (lambda r: -latency_of(r, fmt), lambda r: r["macs"], lambda r: r["params"]))


def accuracy_front(rows: list[dict], fmt: str, score: str) -> list[str]:
    """Keys of the rows no other row beats on both latency and ``score`` (higher is better)."""
    scored = [r for r in rows if latency_of(r, fmt) is not None and r.get(score) is not None]
    return [r["key"] for r in pareto(scored, (lambda r: -latency_of(r, fmt), lambda r: r[score]))]


def shortlist(rows: list[dict], fmt: str, budget_ms: float, k: int) -> list[dict]:
    under = [r for r in rows if latency_of(r, fmt) is not None and latency_of(r, fmt) <= budget_ms]
    if not under:
        timed = [r for r in rows if latency_of(r, fmt) is not None]
        if not timed:
            raise EdgekdError(f"no candidate has a {fmt} latency", "check the latency table and the exports' errors")
        fastest = min(timed, key=lambda r: latency_of(r, fmt))
        raise EdgekdError(f"no candidate meets {budget_ms:g} ms ({fmt}, {STAT[:3]}): the fastest is {fastest['key']} "
                          f"at {latency_of(fastest, fmt):.3g} ms",
                          f"raise --latency-budget-ms to at least {latency_of(fastest, fmt):.3g}, or add smaller "
                          "candidate families")
    front = sorted(capacity_front(under, fmt), key=lambda r: -r["macs"])
    by_family: dict[str, list[dict]] = {}
    for r in front:
        by_family.setdefault(r["family"], []).append(r)
    picked: list[dict] = []
    while len(picked) < k and any(by_family.values()):
        for fam in list(by_family):
            if by_family[fam] and len(picked) < k:
                picked.append(by_family[fam].pop(0))
    return picked


def select_student(cfg, data, log=print, show_progress: bool = False) -> tuple:
    """The candidate to distil for ``cfg.latency_budget_ms`` and what the choice was based on."""
    from edgekd.distill.pipeline import compress

    fmt, budget = cfg.latency_format, cfg.latency_budget_ms
    found = survey(cfg.latency_families, [fmt], (3, *data.image_size), data.num_classes, threads=cfg.latency_threads,
                   profile=cfg.latency_profile or None, latency_table=cfg.latency_table or None,
                   out=Path(cfg.out) / "selection", log=log, candidates=cfg.latency_candidates or None)
    rows = found["rows"]
    picked = shortlist(rows, fmt, budget, cfg.proxy_candidates)
    fit = sum(1 for r in rows if latency_of(r, fmt) is not None and latency_of(r, fmt) <= budget)
    log(f"latency budget {budget:g} ms ({fmt}, {found['source']}): {fit} of {len(rows)} candidates fit; "
        "proxy runs for " + ", ".join(r["key"] for r in picked))
    for r in picked:
        subset = cfg.proxy_train_subset or cfg.train_subset
        # the candidate is the whole shape (early_width included); the folder names the proxy's budget, so a
        # changed proxy setting trains afresh instead of meeting another budget's checkpoint
        proxy = replace(cfg, student_arch=r["arch"], student_kwargs=dict(r["kwargs"]), early_width=1.0,
                        method="student", epochs=cfg.proxy_epochs, train_subset=subset, export=False,
                        latency_budget_ms=0.0,
                        out=str(Path(cfg.out) / "selection" / f"{r['key']}-e{cfg.proxy_epochs}-n{subset}"))
        rep = compress(proxy, show_progress=show_progress, log=lambda _m: None, data=data)
        r["proxy_val_acc"] = rep["student"]["val_acc"]
        log(f"  proxy {r['key']}: {latency_of(r, fmt):.3g} ms, val {r['proxy_val_acc']:.2f}% "
            f"({cfg.proxy_epochs} epochs, {proxy.train_subset or 'all'} images)")
    best = max(picked, key=lambda r: (r["proxy_val_acc"], -latency_of(r, fmt)))
    info = {"budget_ms": budget, "format": fmt, "statistic": STAT[:3], "source": found["source"],
            "system": found["system"], "bench_settings": found["settings"], "chosen": best["key"],
            "chosen_latency_ms": latency_of(best, fmt),
            "proxy": {"method": "student", "epochs": cfg.proxy_epochs, "train_subset": cfg.proxy_train_subset,
                      "scored_on": "validation"},
            "front": accuracy_front(picked, fmt, "proxy_val_acc"),
            "candidates": [{k: r.get(k) for k in ("key", "family", "arch", "kwargs", "params", "macs", "proxy_val_acc",
                                                  "paper_student")} | {"latency_ms": latency_of(r, fmt),
                                                                       "bytes": r[fmt].get("bytes"),
                                                                       "status": r[fmt].get("status")}
                           for r in rows]}
    return Candidate.make(best["arch"], best["kwargs"], best["family"]), info


def verify_shipped(selection: dict, export_dir: str | Path, threads: int = 1, profile: str = "", runs: int = 200,
                   min_time_s: float = 2.0) -> dict:
    """Measure the shipped file in the budget's format (same protocol) and say whether it meets the budget."""
    from edgekd.bench import run_benchmark
    from edgekd.formats import get_format

    fmt = get_format(selection["format"])
    path = Path(export_dir) / fmt.filename
    if not path.exists():
        raise LatencyGateFailed(f"the export has no {fmt.name} file to check against the latency budget",
                                f"include {fmt.name} in --formats")
    if not selection["source"].startswith("measured here"):
        return {"file": str(path), "measured": False, "passed": None,
                "note": f"budget checked against {selection['source']}; confirm on the device with: "
                        f"edgekd bench {path} --threads {threads}"}
    run = run_benchmark([path], profile=profile or None, threads=threads if not profile else None, runs=runs,
                        min_time_s=min_time_s)
    r = run.results[0]
    if not r.ok:
        raise LatencyGateFailed(f"the shipped {fmt.name} file did not run: {r.error}", "see the export's card.md")
    p50 = r.stats["p50_ms"]
    return {"file": str(path), "measured": True, "p50_ms": p50, "p90_ms": r.stats["p90_ms"], "n": r.stats["n"],
            "passed": p50 <= selection["budget_ms"], "warnings": run.warnings}


def choose_for_run(cfg, data, out: Path, show_progress: bool = False, log=print):
    """The student for the latency budget, chosen once per run folder (a resumed run keeps its choice)."""
    asked = {k: getattr(cfg, k) for k in ("latency_budget_ms", "latency_format", "latency_table", "latency_families",
                                          "latency_candidates", "latency_threads", "latency_profile",
                                          "proxy_candidates", "proxy_epochs", "proxy_train_subset")}
    path = out / "selection" / "selection.json"
    try:
        selection = read_json(path) if path.exists() else None
    except (OSError, ValueError):
        selection = None  # a damaged record: choose again (the proxies' finished runs are reused)
    if selection is None or selection.get("asked") != asked:
        chosen, info = select_student(cfg, data, log=log, show_progress=show_progress)
        selection = {"asked": asked, **info, "arch": chosen.arch, "kwargs": chosen.arguments}
        write_json(path, selection)
    else:
        log(f"latency budget: keeping this run's earlier choice {selection['chosen']} ({path})")
    log(f"student for {cfg.latency_budget_ms:g} ms: {selection['chosen']} "
        f"({selection['chosen_latency_ms']:.3g} ms {cfg.latency_format}, {selection['source']})")
    return replace(cfg, student_arch=selection["arch"], student_kwargs=dict(selection["kwargs"]),
                   early_width=1.0), selection


def ship_within_budget(report: dict, selection: dict, cfg, out: Path, log=print) -> None:
    """Record the choice and the front in the report and card; fail loudly if the shipped file is over budget."""
    summary = {k: selection[k] for k in ("budget_ms", "format", "statistic", "source", "chosen", "chosen_latency_ms",
                                         "proxy", "front", "candidates", "system")}
    export_dir = report.get("export", {}).get("dir")
    if export_dir:
        summary["shipped"] = verify_shipped(selection, export_dir, threads=cfg.latency_threads,
                                            profile=cfg.latency_profile)
        card_path = Path(export_dir) / "card.json"
        if card_path.exists():
            from edgekd.convert.card import write_card

            write_card(export_dir, {**read_json(card_path), "latency": summary})
    report["latency"] = summary
    write_json(out / "report.json", report)
    shipped = summary.get("shipped", {})
    if shipped.get("measured"):
        log(f"shipped {selection['format']}: p50 {shipped['p50_ms']:.3g} ms over {shipped['n']} calls "
            f"(budget {selection['budget_ms']:g} ms) → {'met' if shipped['passed'] else 'NOT met'}")
        if not shipped["passed"]:
            raise LatencyGateFailed(f"latency gate failed: the shipped {selection['format']} file runs in "
                                    f"{shipped['p50_ms']:.3g} ms (p50), over the {selection['budget_ms']:g} ms budget",
                                    "raise the budget, measure on a quiet machine, or pass a latency table from "
                                    "the device (--latency-table)")
    elif shipped:
        log(shipped["note"])
