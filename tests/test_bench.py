"""edgekd bench: statistics, runtime selection, inputs, bad models, profiles, outputs.

Every model here is real (ONNX built with onnx.helper, TFLite flatbuffers written with
ai-edge-litert's own schema) and really run; runs are short because only correctness
of the harness is tested, never speed.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bench_models import write_onnx, write_tflite
from edgekd.bench import list_devices, load_profile, run_benchmark, summarize
from edgekd.bench.harness import _Entry, _measure, ModelResult
from edgekd.bench.inputs import Card, _from_images
from edgekd.bench.runtimes import Session, TensorSpec, resolve_ort_providers
from edgekd.bench.system import decode_throttled, run_warnings
from edgekd.errors import EdgekdError

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(runs=20, warmup=2, block=5, threads=[1])


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    (d / "bad.onnx").write_bytes(b"\x08\x07not a protobuf" * 8)
    (d / "bad.tflite").write_bytes(b"TFL3 but truncated" * 4)
    return {
        "onnx": write_onnx(d / "model.onnx"),
        "onnx_fixed": write_onnx(d / "fixed.onnx", dynamic_batch=False),
        "onnx_open_hw": write_onnx(d / "openhw.onnx", dynamic_hw=True),
        "tflite": write_tflite(d / "model.tflite"),
        "tflite_int8": write_tflite(d / "model.int8.tflite", int8=True),
        "bad_onnx": d / "bad.onnx",
        "bad_tflite": d / "bad.tflite",
    }


# ─── statistics ───


def test_summarize_known_data():
    s = summarize(np.arange(1, 101, dtype=float), batch=4)
    assert s["n"] == 100
    assert s["p50_ms"] == pytest.approx(50.5)
    assert s["p90_ms"] == pytest.approx(90.1)
    assert s["p99_ms"] == pytest.approx(99.01)
    assert s["mean_ms"] == pytest.approx(50.5)
    assert s["sd_ms"] == pytest.approx(29.011491975882016)  # sample sd (ddof=1)
    assert (s["min_ms"], s["max_ms"]) == (1.0, 100.0)
    assert s["throughput_per_s"] == pytest.approx(4 * 1000 / 50.5)


def test_summarize_edge_cases():
    assert summarize([2.0])["sd_ms"] == 0.0
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        summarize([1.0, float("nan")])


# ─── runtime selection and a full run ───


def test_runtime_selected_by_file_type_and_int8_input(models):
    run = run_benchmark([models["onnx"], models["tflite"], models["tflite_int8"]], **FAST)
    by_label = {r.label.split("/")[-1]: r for r in run.results}
    assert [r.status for r in run.results] == ["ok"] * 3, [r.error for r in run.results]
    assert by_label["model.onnx"].runtime == "onnxruntime" and by_label["model.onnx"].backend == "CPU"
    assert by_label["model.tflite"].runtime == "litert" and by_label["model.tflite"].backend == "xnnpack"
    int8 = by_label["model.int8.tflite"]
    assert int8.format == "tflite-int8"
    assert int8.inputs[0]["dtype"] == "int8" and int8.inputs[0]["zero_point"] == -128
    for r in run.results:
        assert r.stats["n"] == 20 and len(r.latencies_ms) == 20
        assert r.create_ms > 0 and r.cold_ms > 0 and r.stats["p50_ms"] > 0
        assert r.input_source == "random"
    assert run.system["cores"] >= 1 and "onnxruntime" in run.system["runtimes"]


def test_threads_and_delegates_make_variants(models):
    run = run_benchmark([models["tflite"]], runs=5, warmup=0, block=5, threads=[1, 2], delegates=["xnnpack", "none"])
    got = sorted((r.threads, r.backend) for r in run.results)
    assert got == [(1, "builtin"), (1, "xnnpack"), (2, "builtin"), (2, "xnnpack")]
    assert all(r.ok for r in run.results)


def test_missing_provider_falls_back_with_a_note(models):
    run = run_benchmark([models["onnx"]], providers=["tensorrt", "cpu"], **FAST)
    r = run.results[0]
    assert r.ok and r.backend == "CPU"
    assert any("TensorrtExecutionProvider not in this onnxruntime build" in n for n in r.notes)
    chosen, notes = resolve_ort_providers(["cuda"], ["CPUExecutionProvider"])
    assert chosen == ["CPUExecutionProvider"] and "falling back" in notes[0]


def test_minimum_time_extends_the_run(models):
    run = run_benchmark([models["tflite"]], runs=5, min_time_s=0.05, warmup=0, block=5, threads=[1])
    r = run.results[0]
    assert sum(r.latencies_ms) >= 50 and r.stats["n"] > 5


class _Recorder(Session):
    """A runtime that only logs who ran: lets the test see the harness's schedule."""

    def __init__(self, name: str, log: list):
        super().__init__(runtime="test", backend="log", inputs=[], outputs=[])
        self.name, self.log = name, log

    def run(self, feeds):
        self.log.append(self.name)
        return []


def test_models_are_interleaved_in_blocks():
    log: list[str] = []
    entries = [
        _Entry(result=ModelResult(path=n, label=n), path=Path(n), delegate=None, session=_Recorder(n, log), feeds=[[]])
        for n in "abc"
    ]
    _measure(entries, runs=30, min_time_s=0.0, block=5, rng=np.random.default_rng(0), say=lambda _m: None)
    assert [len(e.result.latencies_ms) for e in entries] == [30, 30, 30]
    # Each block is one untimed call + 5 timed ones; every model gets a turn in every round.
    blocks = [log[i] for i in range(0, len(log), 6)]
    assert all(log[i : i + 6] == [log[i]] * 6 for i in range(0, len(log), 6))
    rounds = [sorted(blocks[i : i + 3]) for i in range(0, len(blocks), 3)]
    assert rounds == [["a", "b", "c"]] * 6
    assert len({tuple(blocks[i : i + 3]) for i in range(0, len(blocks), 3)}) > 1  # order is shuffled


# ─── bad input ───


def test_corrupt_and_missing_files_fail_clearly_and_others_run(models, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty.onnx").write_bytes(b"")
    run = run_benchmark(
        [models["bad_onnx"], models["onnx"], models["bad_tflite"], tmp_path / "nope.onnx", tmp_path / "notes.txt", tmp_path / "empty.onnx"],
        **FAST,
    )
    status = {Path(r.path).name: r for r in run.results}
    assert status["model.onnx"].ok
    assert "ONNX Runtime cannot load it" in status["bad.onnx"].error
    assert "litert cannot load it" in status["bad.tflite"].error
    assert "file not found" in status["nope.onnx"].error
    assert "not a model file edgekd knows" in status["notes.txt"].error
    assert "empty" in status["empty.onnx"].error
    assert len(run.failed) == 5


def test_input_that_cannot_be_synthesised(models):
    run = run_benchmark([models["onnx_open_hw"], models["onnx"]], **FAST)
    assert not run.results[0].ok and "open dimensions" in run.results[0].error and "--input-shape" in run.results[0].error
    assert run.results[1].ok
    run = run_benchmark([models["onnx_open_hw"]], input_shape="1,3,16,16", **FAST)
    assert run.results[0].ok and run.results[0].inputs[0]["shape"] == [None, 3, None, None]


def test_batch(models):
    run = run_benchmark([models["onnx"], models["onnx_fixed"], models["tflite"]], batch=2, **FAST)
    onnx, fixed, tflite = run.results
    assert onnx.ok and tflite.ok and tflite.inputs[0]["shape"][0] == 2  # TFLite resizes its batch-1 input
    assert not fixed.ok and "fixed shape" in fixed.error


# ─── inputs from the model card ───


def _card(folder: Path, n=5, size=8):
    rng = np.random.default_rng(1)
    np.save(folder / "samples.npy", rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8))
    card = {"preprocess": {"layout": "NCHW", "size": [size, size], "pixel_scale": 1 / 255,
                           "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}, "samples": "samples.npy"}  # fmt: skip
    (folder / "card.json").write_text(json.dumps(card))


def test_card_images_are_used(tmp_path):
    onnx, tfl = write_onnx(tmp_path / "model.onnx"), write_tflite(tmp_path / "model.int8.tflite", int8=True)
    _card(tmp_path)
    run = run_benchmark([onnx, tfl], **FAST)
    assert all(r.ok and r.input_source.startswith("card images (5") for r in run.results), [r.error for r in run.results]
    (tmp_path / "card.json").write_text("{not json")
    run = run_benchmark([onnx], **FAST)
    assert run.results[0].ok and run.results[0].input_source == "random"
    assert any("card.json unreadable" in n for n in run.results[0].notes)


def test_image_preprocessing_and_quantisation():
    images = np.array([[[[0, 128, 255]]]], dtype=np.uint8)  # (1, 1, 1, 3)
    card = Card(Path("card.json"), "NCHW", (1, 1), 1 / 255, np.zeros(3, np.float32), np.ones(3, np.float32), images)
    fp = _from_images(images, TensorSpec("x", (1, 3, 1, 1), np.float32), (1, 3, 1, 1), card)
    assert fp.shape == (1, 3, 1, 1) and fp.ravel() == pytest.approx([0, 128 / 255, 1])
    q = _from_images(images, TensorSpec("x", (1, 1, 1, 3), np.int8, 1 / 255, -128), (1, 1, 1, 3), card)
    assert q.dtype == np.int8 and q.ravel().tolist() == [-128, 0, 127]


# ─── torch eager next to its export ───


def test_torch_model_borrows_the_input_shape_of_its_export(tmp_path):
    pytest.importorskip("torch")
    from edgekd.models import create_model
    from edgekd.models.checkpoint import save_model

    model = create_model("student", cf=1121.71)
    save_model(tmp_path / "student.pt", model, "student")
    write_onnx(tmp_path / "student.onnx", size=32)  # stands in for its export: only the input spec matters
    run = run_benchmark([tmp_path / "student.pt", tmp_path / "student.onnx"], **FAST)
    pt, ox = run.results
    assert pt.ok and ox.ok, (pt.error, ox.error)
    assert pt.runtime == "torch" and pt.inputs[0]["shape"] == [1, 3, 32, 32]
    assert any("taken from" in n for n in pt.notes)
    alone = run_benchmark([tmp_path / "student.pt"], **FAST).results[0]
    assert not alone.ok and "--input-shape" in alone.error


# ─── profiles ───


def test_device_profiles_ship_and_match_the_devices_folder():
    assert set(list_devices()) == {"raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano", "jetson-nano", "x86-workstation"}
    for name in list_devices():
        packaged = (ROOT / "edgekd" / "bench" / "profiles" / f"{name}.toml").read_text()
        assert (ROOT / "devices" / name / "profile.toml").read_text() == packaged, f"{name}: copies differ"
        assert (ROOT / "devices" / name / "setup.sh").is_file()
        prof = load_profile(name)
        assert prof["device"]["name"] == name and prof["bench"]["threads"]


def test_profile_settings_apply_and_typos_are_refused(models, tmp_path):
    p = tmp_path / "p.toml"
    p.write_text('[bench]\nthreads = [2]\nruns = 7\nwarmup = 0\n[litert]\ndelegate = "none"\n')
    run = run_benchmark([models["tflite"]], profile=p)
    assert run.results[0].threads == 2 and run.results[0].stats["n"] == 7 and run.results[0].backend == "builtin"
    run = run_benchmark([models["tflite"]], profile=p, runs=3, threads=1)  # flags win
    assert run.results[0].threads == 1 and run.results[0].stats["n"] == 3
    p.write_text("[bench]\nthread = 2\n")
    with pytest.raises(EdgekdError, match="unknown key"):
        load_profile(p)
    with pytest.raises(EdgekdError, match="unknown device"):
        load_profile("raspberry-pi-9")


# ─── throttling ───


def test_throttle_flags_decode_and_warn():
    assert decode_throttled(0x50005) == [
        "under-voltage now", "throttled now", "under-voltage has occurred", "throttling has occurred"
    ]  # fmt: skip
    calm = {"throttled": "0x0", "loadavg": [0.1, 0.1, 0.1], "governor": "performance", "temperature_c": {"cpu": 60.0}}
    hot = {**calm, "throttled": "0x40000", "temperature_c": {"cpu": 83.0}}
    assert run_warnings(calm, calm, 4, 80.0) == []
    warns = run_warnings(calm, hot, 4, 80.0)
    assert any("throttled during the run" in w for w in warns) and any("83.0 °C" in w for w in warns)
    # Throttling that happened before the run (sticky bit already set) is not blamed on it.
    assert not any("throttled" in w for w in run_warnings(hot, {**hot, "temperature_c": {}}, 4, 80.0))


# ─── CLI and outputs ───


def test_cli_outputs_and_exit_code(models, tmp_path):
    from edgekd.cli import app

    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        ["bench", str(models["onnx"]), str(models["tflite_int8"]), str(models["bad_onnx"]), "-n", "10", "--warmup", "1",
         "-t", "1", "--json", str(out / "r.json"), "--csv", str(out / "r.csv"), "--plot", str(out / "r.png")],  # fmt: skip
    )
    assert res.exit_code == 1, res.output
    assert "ONNX Runtime cannot load it" in res.output and "1 of 3 model(s) failed" in res.output
    assert "Traceback" not in res.output
    data = json.loads((out / "r.json").read_text())
    assert [r["status"] for r in data["results"]] == ["ok", "ok", "failed"]
    assert data["results"][0]["speedup_vs_first"] == 1.0 and len(data["results"][1]["latencies_ms"]) == 10
    assert {"system", "before", "after", "settings", "warnings"} <= set(data)
    rows = list(csv.DictReader((out / "r.csv").open()))
    assert rows[1]["format"] == "tflite-int8" and float(rows[1]["p50_ms"]) > 0
    assert (out / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_user_errors_are_one_line(models):
    from edgekd.cli import app

    res = CliRunner().invoke(app, ["bench", str(models["onnx"]), "--device", "raspberry-pi-9"])
    assert res.exit_code == 2 and "unknown device" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["bench", str(models["onnx"]), "--pin", "x"])
    assert res.exit_code == 2 and "--pin takes comma-separated integers" in res.output


def test_machine_record_tells_cpus_of_one_name_apart():
    from edgekd.utils.system import KERNEL_FLAGS, machine_record

    sig = machine_record()["cpu_signature"]
    assert set(sig["kernel_flags"]) <= set(KERNEL_FLAGS)
    info = Path("/proc/cpuinfo").read_text()
    if "cpu family" in info:  # x86: family and model numbers, and whether AVX2 kernels can run
        assert sig["family"].isdigit() and sig["model"].isdigit()
        assert ("avx2" in sig["kernel_flags"]) == (" avx2" in info)
