"""``edgekd bench``: latency of exported models on the device, with numpy and the runtimes only.

Never imports torch at module level: a PyTorch model is benchmarked only when torch is
installed, and torch is imported inside that model's loader.

    from edgekd.bench import run_benchmark
    run = run_benchmark(["export/student/model.onnx", "export/student/model.int8.tflite"], threads=[1, 2])
    for r in run.results:
        print(r.label, r.status, r.stats.get("p50_ms"))
"""

from edgekd.bench.harness import BenchRun, ModelResult, run_benchmark
from edgekd.bench.profile import list_devices, load_profile
from edgekd.bench.stats import summarize

__all__ = ["BenchRun", "ModelResult", "run_benchmark", "list_devices", "load_profile", "summarize"]
