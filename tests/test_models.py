import pytest
import torch

from edgekd.errors import EdgekdError
from edgekd.models import create_model, list_models
from edgekd.models.checkpoint import load_model, save_model
from edgekd.models.complexity import count_macs, count_params
from edgekd.models.student import REFERENCE_TABLE, TEACHER_PARAMS


def test_teacher_matches_reference():
    t = create_model("mobilenetv2_cifar")
    assert count_params(t) == TEACHER_PARAMS == 2_236_682
    assert round(count_macs(t) / 1e6, 1) == 88.0
    # torchvision names, so reference checkpoints load unchanged
    assert "features.18.0.weight" in t.state_dict() and "classifier.1.weight" in t.state_dict()


@pytest.mark.parametrize("removed,expected", sorted(REFERENCE_TABLE.items()))
def test_student_parameter_table(removed, expected):
    params, cf = expected
    s = create_model("student", cf=cf)
    assert s.blocks_removed == removed
    assert count_params(s) == params
    assert round(TEACHER_PARAMS / count_params(s), 2) == cf


def test_student_412_still_does_most_of_the_compute():
    s = create_model("student", cf=4.12)
    assert round(count_macs(s) / 1e6, 1) == 58.7
    assert s(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_width_scaled_student_trades_compute():
    full = create_model("student", cf=4.12)
    thin = create_model("student", cf=4.12, early_width=0.5)
    assert count_macs(thin) < 0.75 * count_macs(full)
    assert count_params(thin) < count_params(full)


@pytest.mark.parametrize("cf", [0.5, float("nan"), 3.0, 5000])
def test_impossible_compression_factor(cf):
    with pytest.raises(EdgekdError):
        create_model("student", cf=cf)


def test_unknown_model():
    with pytest.raises(EdgekdError, match="unknown model"):
        create_model("resnet9000")
    assert {"mobilenetv2_cifar", "student"} <= set(list_models())


def test_checkpoint_roundtrip_and_wrong_architecture(tmp_path):
    s = create_model("student", cf=54.59)
    save_model(tmp_path / "s.pt", s, "student")
    loaded, info = load_model(tmp_path / "s.pt")
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(loaded(x), s.eval()(x))
    # A bare state_dict of one architecture loaded as another is refused clearly.
    torch.save(s.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(EdgekdError, match="does not fit architecture"):
        load_model(tmp_path / "bare.pt", arch="mobilenetv2_cifar")


def test_pickled_objects_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(EdgekdError, match="safely"):
        load_model(tmp_path / "evil.pt", arch="student")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(EdgekdError):
        load_model(tmp_path / "junk.pt", arch="student")
