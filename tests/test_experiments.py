"""Experiment statistics, run enumeration, sharding, resumption and the ImageNet-subset loader."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from edgekd.distill import experiments as ex
from edgekd.distill import stats
from edgekd.errors import EdgekdError

BASE = [90.0, 91.5, 89.2, 92.1, 90.7]
# The same five seeds, each 0.3 pp better: a small effect hidden by the large seed-to-seed spread.
BETTER = [b + d for b, d in zip(BASE, [0.31, 0.29, 0.30, 0.32, 0.28])]


# ─── statistics with known answers ───

def test_summary_mean_sd_and_t_interval_by_hand():
    s = stats.summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert s.mean == 3.0 and s.sd == pytest.approx(math.sqrt(2.5))
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)  # t(0.975, df=4)
    assert (s.ci_low, s.ci_high) == (pytest.approx(3 - half), pytest.approx(3 + half))
    one = stats.summarize([7.0])
    assert one.mean == 7.0 and math.isnan(one.sd)


def test_paired_t_matches_the_formula_and_finds_what_welch_misses():
    d = np.subtract(BETTER, BASE)
    t_by_hand = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    paired = stats.compare(BETTER, BASE, paired=True, test="paired t")
    assert paired.statistic == pytest.approx(t_by_hand)
    assert paired.p < 1e-5 and paired.effect_name == "d_z" and paired.effect_size > 10
    welch = stats.compare(BETTER, BASE, paired=False, test="welch t")
    assert welch.p > 0.5  # the unpaired test cannot see a 0.3 pp shift under a ~1.1 pp spread
    assert welch.effect_name == "d" and welch.effect_size == pytest.approx(0.3 / 1.1, abs=0.05)
    # Welch's t by hand
    a, b = np.array(BETTER), np.array(BASE)
    se = math.sqrt(a.var(ddof=1) / 5 + b.var(ddof=1) / 5)
    assert welch.statistic == pytest.approx((a.mean() - b.mean()) / se)


def test_difference_intervals_by_hand():
    # paired: differences 1, 2, 3 → mean 2, sd 1, t(0.975, 2) = 4.3027
    paired = stats.compare([11.0, 12.0, 13.0], [10.0, 10.0, 10.0], paired=True, test="paired t")
    half = 4.302653 / math.sqrt(3)
    assert paired.diff_ci == pytest.approx((2 - half, 2 + half), abs=1e-5)
    # Welch: equal variances and sizes → df = 2(n − 1) = 4, t(0.975, 4) = 2.776445
    welch = stats.compare([1.0, 2.0, 3.0], [0.0, 1.0, 2.0], paired=False, test="welch t")
    half = 2.776445 * math.sqrt(2 / 3)
    assert welch.diff_ci == pytest.approx((1 - half, 1 + half), abs=1e-5)


def test_normality_check_switches_to_rank_tests():
    base = np.arange(10, dtype=float)
    skewed = base + np.array([0.1] * 9 + [6.0])  # one huge difference: not normal
    auto = stats.compare(skewed, base, paired=True)
    assert auto.normality_p < 0.05 and auto.test == "wilcoxon"
    # every difference positive, n = 10: exact two-sided p = 2 / 2^10
    assert auto.p == pytest.approx(2 / 2**10)
    normal = stats.compare(BETTER, BASE, paired=True)
    assert normal.test == "paired t"
    assert stats.compare([1, 2, 3, 4, 50.0], [1, 2, 3, 4, 5.0], paired=False).test == "mann-whitney u"


def test_holm_on_a_hand_computed_example():
    # sorted p: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → raised to 0.06 (monotone)
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_paired_needs_equal_lengths():
    with pytest.raises(ValueError):
        stats.compare([1, 2, 3], [1, 2], paired=True)


# ─── enumeration, sharding ───

@pytest.mark.parametrize("family", list(ex.FAMILIES))
def test_shards_cover_every_run_exactly_once(family):
    runs = ex.enumerate_runs(family, seeds=3)
    assert len({r.id for r in runs}) == len(runs)
    assert [r.index for r in runs] == list(range(len(runs)))
    assert runs == ex.enumerate_runs(family, seeds=3)  # deterministic
    for n in (1, 2, 3, 5, len(runs) + 2):
        picked = [r.index for i in range(n) for r in ex.select_shard(runs, ex.parse_shard(f"{i}/{n}"))]
        assert sorted(picked) == list(range(len(runs)))


def test_family_contents():
    ablation = ex.enumerate_runs("ablation", seeds=2)
    assert len(ablation) == (6 + 4) * 2 and {r.cf for r in ablation} == {4.12}
    assert {r.seed for r in ablation if r.method == "kd+ig"} == {r.seed for r in ablation if r.method == "student"}
    competitors = {r.label for r in ablation if r.variant != "truncated"}
    assert competitors == {"mnv2-x0.5/student", "mnv2-x0.5/kd", "resnet32/student", "resnet32/kd"}
    assert len(ex.enumerate_runs("ablation", seeds=2, competitors=False)) == 6 * 2
    sweep = ex.enumerate_runs("sweep", seeds=1)
    assert sorted({r.cf for r in sweep}) == list(ex.REFERENCE_CFS) and len(sweep) == 8 * 4
    paired = ex.enumerate_runs("montecarlo", seeds=3)
    unpaired = ex.enumerate_runs("montecarlo", seeds=3, paired_subsets=False)
    by_method = lambda runs, m: {r.split_seed for r in runs if r.method == m}  # noqa: E731
    assert by_method(paired, "kd") == by_method(paired, "student")
    assert not by_method(unpaired, "kd") & by_method(unpaired, "student")
    from pathlib import Path

    cfg = ex.run_config(paired[-1], Path("/tmp/x"), "digits", "t.pt")
    assert cfg.export is False and cfg.teacher == "t.pt"
    # Each draw: 80 % of the budget's fixed training set (the pool, teacher and IG maps stay the same).
    assert (cfg.train_subset, cfg.train_fraction, cfg.fraction_seed, cfg.split_seed) == (5000, 0.8, 2, 0)
    resnet = next(r for r in ex.enumerate_runs("ablation", seeds=1) if r.variant == "resnet32")
    cfg = ex.run_config(resnet, Path("/tmp/x"), "digits", "t.pt")
    assert (cfg.student_arch, cfg.student_kwargs) == ("resnet_cifar", {"depth": 32})


def test_monte_carlo_draws_are_stratified_subsets_of_one_training_pool():
    from edgekd.data import load_dataset
    from edgekd.distill.config import CompressConfig
    from edgekd.distill.pipeline import make_splits

    data = load_dataset("digits", show_progress=False)
    base = dict(data="digits", val_fraction=0.2, train_subset=500)
    first = make_splits(data, CompressConfig(**base))
    pool, val = first.pool, first.val_idx
    draws = [(s.train, s.val_idx) for s in
             (make_splits(data, CompressConfig(**base, train_fraction=0.8, fraction_seed=k)) for k in range(3))]
    for train, v in draws:
        assert np.array_equal(v, val) and len(train) == 400 and set(train) <= set(pool)
        assert np.abs(np.bincount(data.train.labels[train], minlength=10) * 5 / 4
                      - np.bincount(data.train.labels[pool], minlength=10)).max() <= 2
    assert not np.array_equal(draws[0][0], draws[1][0])


@pytest.mark.parametrize("bad", ["2/2", "a/b", "1", "-1/2", "0/0"])
def test_bad_shard_is_a_user_error(bad):
    with pytest.raises(EdgekdError):
        ex.parse_shard(bad)


def test_analysis_pairs_only_runs_with_the_same_seeds_and_splits():
    def rows(method, accs, split_seeds):
        return [{"method": method, "cf": 4.12, "seed": s, "split_seed": s, "train_subset": 100, "test_acc": a,
                 "data": "cifar10"} for a, s in zip(accs, split_seeds)]

    same = ex.analyse(rows("student", BASE, range(5)) + rows("kd", BETTER, range(5)))
    kd = next(e for e in same if e["method"] == "kd")
    assert kd["comparison"]["paired"] and kd["comparison"]["p_holm"] < 0.001 and kd["reference"] == 91.62
    other = ex.analyse(rows("student", BASE, range(5)) + rows("kd", BETTER, range(100, 105)))
    kd = next(e for e in other if e["method"] == "kd")
    assert not kd["comparison"]["paired"] and kd["comparison"]["test"] in ("welch t", "mann-whitney u")
    # a family still running: the baseline has 5 seeds, kd 3 of them → paired on those 3
    partial = ex.analyse(rows("student", BASE, range(5)) + rows("kd", BETTER[:3], range(3)))
    kd = next(e for e in partial if e["method"] == "kd")
    assert kd["comparison"]["paired"] and kd["comparison"]["n_a"] == kd["comparison"]["n_b"] == 3


# ─── resumption (real tiny runs on digits) ───

TINY = dict(train_subset=100, epochs=1, teacher_epochs=1, ig_steps=2, threads=1)


def test_finished_runs_are_never_repeated(tmp_path):
    kw = dict(family="ablation", data="digits", seeds=2, budget="smoke", root=tmp_path, methods=["student"],
              overrides=TINY, log=lambda m: None)
    first = ex.run_family(shard="0/2", **kw)  # one real tiny run (and the family's teacher)
    assert first["ran"] == 1 and first["runs"] == ["student_cf4.12_seed0"]
    teacher = tmp_path / "teacher" / "smoke" / "teacher.pt"  # one per budget, shared by the families
    report = tmp_path / "ablation" / "student_cf4.12_seed0" / "report.json"
    stamps = teacher.stat().st_mtime_ns, report.stat().st_mtime_ns
    again = ex.run_family(shard="0/2", **kw)
    assert again["ran"] == 0 and again["skipped"] == 1
    assert (teacher.stat().st_mtime_ns, report.stat().st_mtime_ns) == stamps  # neither retrained nor rewritten
    with pytest.raises(EdgekdError, match="finished with other settings .*epochs"):
        ex.run_family(shard="0/2", **{**kw, "overrides": {**TINY, "epochs": 2}})
    # a run made before a setting existed (the key absent, the new value at its default) is still the same run
    run_file = report.parent / "run.json"
    older = json.loads(run_file.read_text())
    del older["config"]["sync_bn"]
    for key in ("qat", "qat_steps", "int8_agreement"):  # added later, and only the export stage reads them
        del older["config"][key]
    run_file.write_text(json.dumps(older))
    assert ex.run_family(shard="0/2", **kw)["skipped"] == 1
    listing = ex.run_family(dry_run=True, **kw)
    assert listing["runs_total"] == 2 and listing["already_finished"] == 1 and listing["runs_left"] == 1
    run = json.loads((report.parent / "run.json").read_text())
    assert run["config"]["teacher"] == str(teacher) and run["config"]["train_subset"] == 100
    assert run["config"]["export"] is False and run["code"]["edgekd_version"]
    assert run["inputs"]["teacher"].startswith("sha256:")
    result = ex.aggregate(tmp_path / "ablation", plots=False)
    assert result["runs"] == 1 and (tmp_path / "ablation" / "results.csv").exists()


def test_export_settings_matter_only_to_runs_that_export():
    from edgekd.distill.config import CompressConfig
    from edgekd.distill.experiments.runner import changed_settings

    default = CompressConfig().to_dict()
    done = {k: v for k, v in default.items() if k != "qat"}  # a run from before the setting existed
    assert changed_settings({**done, "export": False}, {**default, "qat": "off", "export": False}, default) == []
    assert changed_settings({**done, "export": True}, {**default, "qat": "off", "export": True}, default) == ["qat"]


def test_a_moved_root_resumes_and_another_teacher_file_is_refused(tmp_path):
    root = tmp_path / "here"
    kw = dict(family="ablation", data="digits", seeds=1, budget="smoke", methods=["student"], overrides=TINY,
              log=lambda m: None)
    assert ex.run_family(root=root, **kw)["ran"] == 1
    moved = tmp_path / "elsewhere"
    shutil.copytree(root, moved)  # runs record the teacher by path; the copy's teacher is another path, same bytes
    assert ex.run_family(root=moved, **kw)["skipped"] == 1
    teacher = moved / "teacher" / "smoke" / "teacher.pt"
    other = tmp_path / "other-teacher.pt"
    other.write_bytes(teacher.read_bytes() + b"\0")  # another file: must not pass for the one the run used
    with pytest.raises(EdgekdError, match="finished with other settings .*teacher"):
        ex.run_family(root=moved, teacher=str(other), **kw)


# ─── ImageNet subset ───

def test_imagenet_subset_loader_on_the_shared_folder():
    images = ex.load_imagenet_cifar10(shared_path("imagenet-cifar10"))
    assert images.images.shape == (142, 32, 32, 3) and images.images.dtype == np.uint8
    # README: bird 59, dog 41, cat 13, automobile 10, truck 7, ship 6, frog 3, one each of horse, deer, airplane
    assert np.bincount(images.labels, minlength=10).tolist() == [1, 10, 59, 13, 1, 41, 3, 1, 6, 7]


def test_balanced_accuracy_by_hand():
    labels = [0, 0, 0, 0, 1, 2]
    pred = [0, 0, 0, 0, 0, 2]
    # recalls 1, 0, 1 → 66.7 % although plain accuracy is 83.3 %
    assert ex.balanced_accuracy(labels, pred, 10) == pytest.approx(200 / 3)


def _fake_report(path, method, cf, seed, acc):
    path.mkdir(parents=True)
    (path / "report.json").write_text(json.dumps({
        "method": method, "compression_factor": cf, "seed": seed, "timings": {"student_s": 10.0, "total_s": 12.0},
        "config": {"cf": cf, "split_seed": 0, "train_subset": 0},
        "student": {"test_acc": acc, "val_acc": acc, "best_epoch": 1}, "teacher": {"test_acc": 93.0},
        "data": {"name": "cifar10"}}))


def test_aggregate_writes_tables_and_plots(tmp_path):
    rng = np.random.default_rng(0)
    for cf in (4.12, 28.97):
        for m in ("student", "kd"):
            for s in range(3):
                _fake_report(tmp_path / f"{m}_cf{cf:g}_seed{s}", m, cf, s, 90 - cf / 10 + (m == "kd") + rng.normal(0, .3))
    r = ex.aggregate(tmp_path)
    assert r["runs"] == 12 and sorted(p.split("/")[-1] for p in r["figures"]) == [
        "accuracy_vs_cf.png", "box_cf28.97.png", "box_cf4.12.png"]
    md = (tmp_path / "results.md").read_text()
    assert "| 4.12× | kd | – | 3 |" in md and "paired t" in md and "91.62" in md  # the paper's KD figure beside ours
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 13


def test_paper_budget_is_the_papers_recipe(tmp_path):
    runs = ex.enumerate_runs("ablation", budget="paper", competitors=False)
    assert len(runs) == 6 * 5 and {r.cf for r in runs} == {4.12}  # ≥ 5 seeds at 4.12×, as the issue asks
    cfg = ex.run_config(runs[-1], tmp_path, "cifar10", str(tmp_path / "teacher.pt"))
    assert (cfg.method, cfg.epochs, cfg.batch_size, cfg.lr, cfg.optimizer) == ("kd+ig+at", 100, 64, 1e-3, "adam")
    assert (cfg.alpha, cfg.temperature, cfg.gamma, cfg.ig_p, cfg.ig_steps) == (0.01, 2.5, 0.8, 0.1, 50)
    assert cfg.train_subset == 0 and cfg.device == "auto"  # the whole training set, on a GPU where there is one
    assert ex._teacher_config("paper", tmp_path, "cifar10").teacher_epochs == 200


def test_estimate_is_measured_here_and_counts_only_what_is_left(tmp_path):
    runs = ex.enumerate_runs("ablation", seeds=1, budget="smoke", methods=["student", "kd"])
    fresh = ex.estimate_seconds(runs, tmp_path, "digits", None)
    assert fresh["basis"] == {"measured": 0, "timed here": 2} and fresh["total_cpu_s"] > 0
    assert all("timed here" in k["basis"] for k in fresh["per_kind"].values())
    # a finished run of that kind: its measured time is used instead
    _fake_report(tmp_path / "ablation" / "student_cf4.12_seed0", "student", 4.12, 0, 50.0)
    resumed = ex.estimate_seconds(runs[1:], tmp_path, "digits", None)
    assert resumed["basis"]["timed here"] == 1
    again = ex.estimate_seconds(runs[:1], tmp_path, "digits", None)
    assert again["basis"] == {"measured": 1, "timed here": 0} and again["total_cpu_s"] == 12


def test_cli_dry_run_and_errors(tmp_path):
    from typer.testing import CliRunner

    from edgekd.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["experiment", "ablation", "--dry-run", "--seeds", "1", "--root", str(tmp_path),
                            "--budget", "smoke", "--methods", "student,kd+ig+at"])
    assert r.exit_code == 0, r.output
    assert "2 runs in all" in r.output and "kd-ig-at_cf4.12_seed0" in r.output
    assert "estimate for the 2 runs left" in r.output and "timed on this machine" in r.output
    r = runner.invoke(app, ["experiment", "report", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "no finished runs" in r.output
    r = runner.invoke(app, ["experiment", "sweep", "--dry-run", "--budget", "gpu"])
    assert r.exit_code == 2 and "unknown budget" in r.output


def test_a_run_held_by_another_process_is_not_started_twice(tmp_path):
    import fcntl

    run = ex.enumerate_runs("ablation", seeds=1, budget="smoke", methods=["student"])[0]
    out = tmp_path / "ablation" / run.id
    out.mkdir(parents=True)
    calls = []
    with open(out / ".lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        status = ex.execute_run(run, tmp_path, "digits", "t.pt", compress_fn=lambda *a, **k: calls.append(1))
    assert status == "busy" and not calls and not (out / "run.json").exists()
    assert ex.execute_run(run, tmp_path, "digits", "t.pt", compress_fn=lambda *a, **k: calls.append(1)) == "done"
    assert calls == [1]


def test_sweep_methods_are_compared_across_cfs_with_one_seed():
    def row(method, cf, acc):
        return {"method": method, "cf": cf, "seed": 0, "split_seed": 0, "train_subset": 100, "test_acc": acc}

    base = {2.19: 50.0, 4.12: 48.0, 28.97: 40.0, 1121.71: 20.0}
    gain = {2.19: 0.5, 4.12: 1.0, 28.97: 1.5, 1121.71: 1.0}
    rows = [row("student", cf, a) for cf, a in base.items()] + [row("kd", cf, base[cf] + gain[cf]) for cf in base]
    rows.append(row("ig", 4.12, 47.0))  # one cf only: no test
    (kd,) = ex.analyse_across_cfs(rows)
    d = np.array(list(gain.values()))
    assert kd["method"] == "kd" and kd["pairs"] == 4 and kd["comparison"]["paired"]
    assert kd["comparison"]["mean_difference"] == pytest.approx(1.0)
    assert kd["comparison"]["statistic"] == pytest.approx(d.mean() / (d.std(ddof=1) / 2))
    assert "| kd | 4 | +1.00" in ex.markdown_across_cfs([kd])


def test_variants_filter_keeps_only_the_named_competitors():
    import edgekd.distill.experiments as ex

    runs = ex.enumerate_runs("students", seeds=2, variants=["airbench-x0.25", "resnet20"])
    assert sorted({r.variant for r in runs}) == ["airbench-x0.25", "resnet20"] and len(runs) == 4
    with pytest.raises(EdgekdError, match="no student variant"):
        ex.enumerate_runs("students", variants=["nope"])


def test_the_report_scores_every_run_under_corruption_once(tmp_path):
    kw = dict(family="ablation", data="digits", seeds=2, budget="smoke", root=tmp_path, methods=["student", "kd"],
              overrides=TINY, log=lambda m: None)
    assert ex.run_family(**kw)["ran"] == 4  # real tiny runs, paired by seed
    family = tmp_path / "ablation"
    result = ex.aggregate(family, plots=False, robustness_images=10_000, log=lambda m: None)
    rows = {r["run_id"]: r for r in ex.collect(family)}
    for run_id, row in rows.items():
        cached = json.loads((family / run_id / "robustness.json").read_text())
        # every test image (digits has fewer than 10,000): clean accuracy is the run's own test accuracy
        assert cached["accuracy"]["clean"] == pytest.approx(row["test_acc"], abs=1e-6)
        assert set(cached["accuracy"]) == {"clean", "jpeg90", "jpeg75", "jpeg50", "gaussian_noise", "gaussian_blur",
                                           "brightness", "contrast"}
    kd = next(e for e in result["robustness"] if e["method"] == "kd")
    assert kd["comparison"]["paired"] and kd["comparison"]["n_a"] == 2
    md = (family / "results.md").read_text()
    assert "### Under corruption" in md and "| 4.12× | kd | 2 |" in md
    stamps = {p: p.stat().st_mtime_ns for p in family.glob("*/robustness.json")}
    ex.aggregate(family, plots=False, robustness_images=10_000, log=lambda m: None)
    assert {p: p.stat().st_mtime_ns for p in family.glob("*/robustness.json")} == stamps  # cached, not rescored
    ex.aggregate(family, plots=False, robustness_images=50, log=lambda m: None)  # other images: rescored
    assert all(json.loads(p.read_text())["images"] == 50 for p in stamps)

    # kept as records only (no weights), then restored into a fresh root: the family resumes, the report counts them
    (family / "kd_cf4.12_seed2").mkdir()
    (family / "kd_cf4.12_seed2" / "run.json").write_text("{}")  # started, never finished: not a result
    kept = tmp_path / "kept"
    assert sorted(ex.copy_records(family, kept)) == sorted(rows)
    assert not list(kept.rglob("*.pt")) and not (kept / "kd_cf4.12_seed2").exists()
    fresh = tmp_path / "fresh"
    assert len(ex.copy_records(kept, fresh / "ablation")) == 4
    assert ex.run_family(**{**kw, "root": fresh, "dry_run": True})["runs_left"] == 0
    restored = ex.aggregate(fresh / "ablation", plots=False, robustness_images=50, log=lambda m: None)
    assert restored["robustness"] == ex.aggregate(family, plots=False, robustness_images=50,
                                                  log=lambda m: None)["robustness"]
    with pytest.raises(EdgekdError, match="neither student.pt nor corruption scores for 10000"):
        ex.aggregate(fresh / "ablation", plots=False, robustness_images=10_000, log=lambda m: None)
    assert ex.copy_records(kept, fresh / "ablation") == []  # nothing the destination has is overwritten
    (kept / "kd_cf4.12_seed0" / "robustness.json").unlink()  # kept before the report scored it
    assert ex.copy_records(family, kept) == ["kd_cf4.12_seed0"] and (kept / "kd_cf4.12_seed0" / "robustness.json").is_file()


def test_the_converged_budget_trains_the_student_that_converges_here_with_its_own_methods():
    runs = ex.enumerate_runs("ablation", budget="converged")
    assert len(runs) == 20 and {r.variant for r in runs} == {"airbench-x0.5"}
    assert [r.label for r in runs[:4]] == ["student", "kd", "ig", "kd+ig"]  # the family's own student
    assert all(r.main for r in runs) and [r.seed for r in runs[::4]] == [0, 1, 2, 3, 4]  # seed-major: resumable
    cfg = ex.run_config(runs[3], Path("/tmp/x"), "cifar10", "teacher.pt")
    assert (cfg.student_arch, cfg.recipe, cfg.epochs, cfg.train_subset) == ("airbench", "fast", 16, 0)
    assert cfg.notes["main"] is True
    # the cpu budget keeps the paper's truncated student and its competitors
    cpu = ex.enumerate_runs("ablation", budget="cpu")
    assert cpu[0].variant == "truncated" and any(not r.main for r in cpu)


def test_a_run_that_diverges_is_recorded_counted_and_the_family_goes_on(tmp_path):
    from edgekd.distill.pipeline import compress
    from edgekd.distill.trainer import TrainingDiverged

    def diverging_kd(cfg, **kw):  # the real pipeline, except that every kd run diverges
        if cfg.method == "kd":
            raise TrainingDiverged("the model's weights became NaN/inf at epoch 1 (head.weight …)")
        return compress(cfg, **kw)

    kw = dict(family="ablation", data="digits", budget="smoke", root=tmp_path, seeds=1, methods=["kd", "student"],
              overrides=TINY, log=lambda m: None, compress_fn=diverging_kd)
    first = ex.run_family(**kw)
    assert first["failed"] == 1 and first["ran"] == 1  # kd failed first; the shard went on to the Student
    failed = json.loads((tmp_path / "ablation" / "kd_cf4.12_seed0" / "failed.json").read_text())
    assert "NaN/inf" in failed["error"] and failed["run"]["method"] == "kd"
    again = ex.run_family(**kw)
    assert again["skipped"] == 2 and again["failed"] == 0  # a divergence is a result: not retried
    assert ex.run_family(dry_run=True, **kw)["runs_left"] == 0
    result = ex.aggregate(tmp_path / "ablation", plots=False)
    assert result["runs"] == 1 and [f["method"] for f in result["failed"]] == ["kd"]
    assert "- kd: 1 of 1 runs (seed 0)" in (tmp_path / "ablation" / "results.md").read_text()


def test_divergence_is_told_apart_from_bad_inputs():
    import torch

    from edgekd.distill.trainer import TrainingDiverged, _check_finite
    from edgekd.errors import EdgekdError

    model = torch.nn.Linear(4, 3)
    x = torch.ones(2, 4)
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match="weights became NaN/inf"):
        _check_finite(torch.tensor(float("nan")), 0, 0, model, x, model(x))
    with torch.no_grad():
        model.weight.fill_(3e38)  # finite weights whose outputs overflow
    with pytest.raises(TrainingDiverged, match="overflowed"):
        _check_finite(torch.tensor(float("inf")), 0, 0, model, x, model(x))
    with torch.no_grad():
        model.weight.fill_(0.1)
    bad_input = torch.full((2, 4), float("nan"))
    with pytest.raises(EdgekdError, match="check the inputs") as info:
        _check_finite(torch.tensor(float("nan")), 0, 0, model, bad_input, model(bad_input))
    assert not isinstance(info.value, TrainingDiverged)
