import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGEKD_TEST_DATA", ROOT.parent / "shared" / "data"))


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
