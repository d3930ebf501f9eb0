"""Students chosen by measured latency: the candidate space, latency tables, the budget, end to end."""

import json

import pytest
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.errors import EdgekdError
from edgekd.models.complexity import count_macs, count_params
from edgekd.models.registry import create_model
from edgekd.select.candidates import Candidate, enumerate_candidates, is_paper_student, parse_candidates
from edgekd.select.choose import accuracy_front, capacity_front, shortlist, verify_shipped
from edgekd.select.latency import latency_rows, read_latency_table
from edgekd.select.survey import survey

runner = CliRunner()
TWO = ["resnet8", {"arch": "resnet_cifar", "kwargs": {"depth": 8, "width": 8, "stem_stride": 2}}]


def test_the_grid_covers_every_family_once_and_places_the_paper_student():
    cands = enumerate_candidates()
    keys = [c.key for c in cands]
    assert len(keys) == len(set(keys)) > 20
    assert {c.family for c in cands} == {"truncated", "mobilenetv2", "resnet", "airbench"}
    assert sum(is_paper_student(c) for c in cands) == 1  # in the truncated grid, not added twice
    assert [c.key for c in enumerate_candidates("resnet")][-1] == "student-blocks_removed5"  # placed beside others
    with pytest.raises(EdgekdError, match="unknown student family vgg"):
        enumerate_candidates("resnet,vgg")
    with pytest.raises(EdgekdError, match="does not take argument"):
        parse_candidates([{"arch": "resnet_cifar", "kwargs": {"depht": 8}}])
    with pytest.raises(EdgekdError, match="bad candidate"):
        parse_candidates([42])


def test_stage2_stride_cuts_compute_not_parameters_and_old_files_keep_their_config():
    full, half = create_model("student", cf=4.12), create_model("student", cf=4.12, stage2_stride=2)
    assert count_params(full) == count_params(half)
    assert count_macs(half) < 0.35 * count_macs(full)
    assert "stage2_stride" not in full.config and half.config["stage2_stride"] == 2


def _bench_json(results):
    return {"results": results, "system": {"cpu": "test"}, "settings": {"threads": [1]}, "warnings": []}


def test_a_device_table_joins_by_folder_and_counts_failures():
    records = [{"key": k, "family": "resnet", "arch": "resnet_cifar", "kwargs": {}, "params": 1, "macs": 1,
                "formats": {"onnx-int8": {"status": "ok", "file": "model.int8.onnx", "bytes": 10}}} for k in "abc"]
    records[2]["formats"]["onnx-int8"] = {"status": "failed", "error": "unsupported op"}
    table = read_latency_table(_bench_json([
        {"path": "/pi/models/a/model.int8.onnx", "format": "onnx-int8", "status": "ok",
         "stats": {"p50_ms": 1.5, "p90_ms": 2.0, "n": 100}},
        {"path": "models/b/model.int8.onnx", "format": "onnx-int8", "status": "failed", "error": "no runtime"}]))
    rows = {r["key"]: r["onnx-int8"] for r in latency_rows(records, table, ["onnx-int8"])}
    assert rows["a"]["status"] == "ok" and rows["a"]["p50_ms"] == 1.5
    assert rows["b"]["status"] == "bench failed" and rows["c"]["status"] == "export failed"


def test_bad_latency_tables_are_one_line_errors(tmp_path):
    with pytest.raises(EdgekdError, match="not found"):
        read_latency_table(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(EdgekdError, match="not a JSON latency table"):
        read_latency_table(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"runs": []}))
    with pytest.raises(EdgekdError, match="not an `edgekd bench --json` file"):
        read_latency_table(tmp_path / "other.json")


def _row(key, ms, macs, params, family="resnet"):
    return {"key": key, "family": family, "macs": macs, "params": params,
            "onnx-int8": {"status": "ok", "p50_ms": ms} if ms is not None else {"status": "bench failed"}}


def test_the_shortlist_keeps_capacity_under_the_budget_and_a_budget_nobody_meets_names_the_fastest():
    rows = [_row("big", 3.0, 90, 900), _row("mid", 1.0, 40, 400), _row("same-speed-smaller", 1.0, 20, 100),
            _row("small", 0.5, 10, 50, "truncated"), _row("broken", None, 5, 5)]
    assert {r["key"] for r in capacity_front(rows, "onnx-int8")} == {"big", "mid", "small"}
    picked = [r["key"] for r in shortlist(rows, "onnx-int8", 1.2, 2)]
    assert picked == ["mid", "small"]  # one per family first; "big" is over budget, the dominated one never
    with pytest.raises(EdgekdError, match="no candidate meets 0.1 ms.*fastest is small at 0.5 ms"):
        shortlist(rows, "onnx-int8", 0.1, 2)
    scored = [dict(r, acc=a) for r, a in zip(rows[:4], (90, 80, 85, 70))]
    assert set(accuracy_front(scored, "onnx-int8", "acc")) == {"big", "same-speed-smaller", "small"}


def test_survey_measures_here_caches_exports_and_reads_a_device_table(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path / "cache"))
    kw = dict(formats=["onnx-int8"], runs=5, min_time_s=0.0, candidates=TWO, log=lambda m: None)
    first = survey(out=tmp_path / "here", **kw)
    rows = {r["key"]: r for r in first["rows"]}
    assert set(rows) == {"resnet8", "resnet_cifar-depth8-stem_stride2-width8"}
    for r in rows.values():
        assert r["onnx-int8"]["status"] == "ok" and r["onnx-int8"]["p50_ms"] > 0 and r["onnx-int8"]["n"] >= 5
    assert rows["resnet8"]["macs"] > 3 * rows["resnet_cifar-depth8-stem_stride2-width8"]["macs"]
    exported = next((tmp_path / "cache" / "candidates").rglob("model.int8.onnx"))
    stamp = exported.stat().st_mtime_ns
    # the device flow: export-only folder → `edgekd bench` (no torch needed there) → the table read back
    dev = survey(out=tmp_path / "dev", export_only=True, **kw)
    assert exported.stat().st_mtime_ns == stamp  # cached per architecture, not exported again
    models = sorted((tmp_path / "dev" / "models").iterdir())
    r = runner.invoke(app, ["bench", *map(str, models), "--runs", "5", "--min-time", "0", "--json",
                            str(tmp_path / "pi.json"), "--quiet"])
    assert r.exit_code == 0, r.output
    read = survey(out=tmp_path / "dev", latency_table=str(tmp_path / "pi.json"), **kw)
    assert read["source"].startswith("table") and dev["export_only"]
    assert all(r["onnx-int8"]["status"] == "ok" for r in read["rows"])
    assert (tmp_path / "dev" / "candidates.csv").read_text().count("\n") == 3


def test_compress_with_a_latency_budget_ships_a_student_that_meets_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path / "cache"))
    cfg = tmp_path / "run.toml"
    cfg.write_text('latency_candidates = ["resnet8", {arch = "resnet_cifar", kwargs = {depth = 8, width = 8, '
                   'stem_stride = 2}}]\nproxy_epochs = 1\nproxy_train_subset = 300\n')
    base = ["compress", "--config", str(cfg), "--method", "student", "--epochs", "1", "--formats", "onnx-int8",
            "--out", str(tmp_path / "run")]
    r = runner.invoke(app, [*base, "--latency-budget-ms", "1e-6"])
    assert r.exit_code != 0 and "no candidate meets 1e-06 ms" in r.output and "fastest is" in r.output
    r = runner.invoke(app, [*base, "--latency-budget-ms", "1000"])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    lat = report["latency"]
    assert lat["shipped"]["measured"] and lat["shipped"]["passed"] and lat["shipped"]["p50_ms"] <= 1000
    chosen = json.loads((tmp_path / "run" / "selection" / "selection.json").read_text())
    built = {k: v for k, v in report["student"]["kwargs"].items() if k != "num_classes"}
    assert report["student"]["arch"] == chosen["arch"] and built == chosen["kwargs"]
    assert lat["chosen"] == chosen["chosen"] in {c["key"] for c in lat["candidates"]}
    assert all(c["proxy_val_acc"] is not None for c in lat["candidates"])  # both fit: both proxied, on validation
    card = (tmp_path / "run" / "export").glob("*/card.md").__next__().read_text()
    assert "## Latency budget" in card and lat["chosen"] in card
    # the gate on the shipped file is a real measurement: an impossible budget fails it
    sel = {**chosen, "budget_ms": 1e-6}
    got = verify_shipped(sel, next((tmp_path / "run" / "export").iterdir()), runs=5, min_time_s=0)
    assert got["measured"] and got["passed"] is False


def test_latency_settings_are_checked_before_anything_runs():
    from edgekd.distill.config import resolve_config

    with pytest.raises(EdgekdError, match="unknown latency_format"):
        resolve_config("quick", None, {"latency_budget_ms": 1.0, "latency_format": "tensorrt"})
    with pytest.raises(EdgekdError, match="unknown student family"):
        resolve_config("quick", None, {"latency_budget_ms": 1.0, "latency_families": "vgg"})
    with pytest.raises(EdgekdError, match="latency_budget_ms must be ≥ 0"):
        resolve_config("quick", None, {"latency_budget_ms": -1.0})
    assert Candidate.make("resnet_cifar", {"width": 8, "depth": 8}).key == "resnet_cifar-depth8-width8"


def test_a_run_config_with_candidate_tables_reads_back(tmp_path):
    """OUT/config.toml must load as the settings that made it (inline tables inside lists and tables)."""
    import tomllib

    from edgekd.distill.config import resolve_config
    from edgekd.utils.config import to_toml

    cfg = resolve_config("quick", None, {"latency_budget_ms": 1.0, "latency_candidates": TWO,
                                         "notes": {"run": {"seed": 3}, "odd key": "x"}})
    back = tomllib.loads(to_toml(cfg.to_dict()))
    assert back["latency_candidates"] == TWO and back["notes"] == {"run": {"seed": 3}, "odd key": "x"}
    assert resolve_config("quick", None, back).latency_candidates == TWO


def test_airbench_family_is_a_grid_of_width_scaled_dense_students():
    from edgekd.select.candidates import FAMILIES, build, enumerate_candidates

    cands = [c for c in enumerate_candidates("airbench")]
    assert [c.arguments.get("width_mult") for c in cands if c.family == "airbench"] == list(FAMILIES["airbench"].grid["width_mult"])
    widths = [build(c, 10).config["widths"] for c in cands if c.family == "airbench"]
    assert widths == [[16, 64, 64], [24, 96, 96], [32, 128, 128]]  # multiples of 8, growing with width_mult


def test_cached_export_is_redone_when_the_model_file_changes():
    import edgekd.select.latency as lat

    record = {"arch": "airbench", "edgekd_version": __import__("edgekd").__version__,
              "source": lat._architecture_source("airbench"), "formats": {"onnx-int8": {}}}
    assert lat._record_is_current(record, ["onnx-int8"])
    assert not lat._record_is_current({**record, "source": "stale"}, ["onnx-int8"])
