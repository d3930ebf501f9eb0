import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGEKD_TEST_DATA", ROOT.parent / "shared" / "data"))
# `python -c BLOCK_TORCH script.py args...` runs a script with every torch import failing: the device side's proof.
BLOCK_TORCH = """
import runpy, sys
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
        return None
sys.meta_path.insert(0, BlockTorch())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def shared_path(*parts: str) -> Path:
    """Path into the shared real data; skip (or fail under CI) when it is not there."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        msg = f"shared test data not found: {p} (set EDGEKD_TEST_DATA)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return p


@pytest.fixture(scope="session")
def cifar_zip() -> Path:
    return shared_path("cifar10-png.zip")


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    # One torch thread: with two, any other load on the 2-core machine makes every OpenMP
    # barrier wait for a descheduled thread (a training step went from 0.5 s to 5 s here).
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """A digits ResNet-8 trained to ~95 % and exported to every format with its card (shared: export is slow)."""
    import numpy as np
    import torch

    from edgekd.convert.classifier import LabelledImages, export_classifier
    from edgekd.convert.spec import InputSpec
    from edgekd.data import load_dataset
    from edgekd.distill.trainer import TrainConfig, train
    from edgekd.models import create_model

    d = load_dataset("digits")
    torch.manual_seed(0)
    model = create_model("resnet8")
    train(model, d.train.subset(np.arange(1100)), d.train.subset(np.arange(1100, 1295)), d.mean, d.std,
          TrainConfig(epochs=12, lr=1e-2, precise_bn_images=512), show_progress=False)
    spec = InputSpec(mean=d.mean, std=d.std)
    out = tmp_path_factory.mktemp("export")
    val = LabelledImages(d.train.images[1100:1295], d.train.labels[1100:1295], "validation")
    test = LabelledImages(d.test.images, d.test.labels, "test")
    card = export_classifier(model.eval(), spec, out, d.train.images[:256], val, test, formats="all", gate_pp=3.0,
                             card_info={"name": "digits-test", "classes": [f"digit {c}" for c in d.classes]},
                             log=lambda m: None)
    return {"model": model, "spec": spec, "out": out, "card": card, "data": d, "val": val, "test": test}
