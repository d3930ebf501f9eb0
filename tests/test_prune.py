"""Starting a student from its teacher's channels (edgekd.models.prune) and its place in compress."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from edgekd.distill.config import resolve_config
from edgekd.distill.pipeline import compress
from edgekd.distill.recipes import FROM_TEACHER, student_train_config
from edgekd.models import create_model
from edgekd.models.airbench import AirbenchNet
from edgekd.models.prune import PruneError, init_from_teacher, trace_channels

X = torch.randn(32, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _kill_channels(teacher: nn.Module, narrowed: dict[int, int]) -> None:
    """Make the last channels of each named space dead: every layer writing them writes zeros."""
    spaces = trace_channels(teacher, X[:2])
    state = teacher.state_dict()
    with torch.no_grad():
        for name, axes in spaces.axes.items():
            if axes and axes[0] in narrowed and name.rsplit(".", 1)[1] in ("weight", "bias"):
                keep = narrowed[axes[0]]
                state[name][keep:] = 0  # conv rows, BatchNorm scale and shift
    teacher.load_state_dict(state)


@pytest.mark.parametrize("teacher_fn, student_fn", [
    (lambda: AirbenchNet(10, (16, 32, 32)), lambda: AirbenchNet(10, (16, 24, 32))),
    (lambda: create_model("resnet_cifar", depth=8, width=16), lambda: create_model("resnet_cifar", depth=8, width=12)),
    (lambda: create_model("mobilenetv2_cifar"), lambda: create_model("mobilenetv2_x0_5")),
])
def test_a_narrower_student_keeps_exactly_the_channels_that_matter(teacher_fn, student_fn):
    torch.manual_seed(0)
    teacher, student = teacher_fn().eval(), student_fn().eval()
    t_spaces, s_spaces = trace_channels(teacher, X[:2]), trace_channels(student, X[:2])
    t_state, s_state = teacher.state_dict(), student.state_dict()
    narrowed = {}
    for name, axes in t_spaces.axes.items():
        for axis, space in enumerate(axes):
            if space is not None and s_state[name].shape[axis] < t_state[name].shape[axis]:
                narrowed[space] = s_state[name].shape[axis]
    assert narrowed and not set(narrowed) & t_spaces.fixed
    # with the channels the student lacks dead in the teacher (they write zeros, also across residual sums),
    # the pruned student must compute the teacher's function exactly: only live channels may be kept
    _kill_channels(teacher, narrowed)
    info = init_from_teacher(student, teacher, X)
    assert info["narrowed_spaces"] == len(narrowed) and info["kept_channels"] == sum(narrowed.values())
    with torch.no_grad():
        assert torch.allclose(student(X), teacher(X), atol=1e-5)
    assert len(s_spaces.axes) == len(t_spaces.axes)


def test_the_same_shape_copies_the_teacher_and_fewer_blocks_take_the_first_ones():
    teacher = create_model("resnet32").eval()
    same = create_model("resnet32").eval()
    init_from_teacher(same, teacher, X)
    with torch.no_grad():
        assert torch.equal(same(X), teacher(X))
    shallower = create_model("resnet20")
    init_from_teacher(shallower, teacher, X)
    assert torch.equal(shallower.state_dict()["layer1.2.conv2.weight"], teacher.state_dict()["layer1.2.conv2.weight"])


class _Concat(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, width, 3), nn.Conv2d(3, width, 3)
        self.head = nn.Linear(2 * width, 10)

    def forward(self, x):
        return self.head(torch.cat([self.a(x), self.b(x)], 1).mean((2, 3)))


@pytest.mark.parametrize("teacher_fn, student_fn, message", [
    (lambda: create_model("airbench"), lambda: create_model("resnet20"), "no 'stem"),
    (lambda: AirbenchNet(10, (16, 24, 32)), lambda: AirbenchNet(10, (16, 32, 32)), "wider"),
    (lambda: AirbenchNet(10, (16, 24, 32)), lambda: AirbenchNet(5, (16, 24, 32)), "output width"),
    (lambda: create_model("mobilenetv2_cifar"), lambda: create_model("student", cf=4.12), "another role"),
    (lambda: _Concat(8), lambda: _Concat(4), "concatenation"),
])
def test_students_that_are_not_a_narrower_teacher_are_refused(teacher_fn, student_fn, message):
    with pytest.raises(PruneError, match=message) as err:
        init_from_teacher(student_fn(), teacher_fn().eval(), X)
    assert err.value.hint


def test_compress_starts_the_student_from_the_teacher_and_keeps_its_whitening(tmp_path):
    report = compress(dict(preset="cpu", data="digits", train_subset=300, epochs=1, teacher_epochs=1, threads=1,
                           method="kd", student_arch="airbench93", student_init="teacher", out=str(tmp_path / "run"),
                           export=False), show_progress=False, log=lambda _m: None)
    init = report["student"]["init"]
    assert init["from"] == "teacher" and init["narrowed_spaces"] == 4 and 0 <= init["val_acc"] <= 100
    assert report["hyperparameters"]["student_init"] == "teacher" and report["timings"]["student_init_s"] >= 0
    from edgekd.models.sources import load_model

    student = load_model(tmp_path / "run" / "student.pt").model
    teacher = load_model(tmp_path / "run" / "teacher.pt").model
    # the whitening filters are frozen and came from the teacher (not re-estimated from the data)
    assert torch.equal(student.whiten.weight, teacher.whiten.weight)
    # a student that is not a narrower teacher: "auto" starts it at random and says why, "teacher" refuses
    common = dict(preset="cpu", data="digits", train_subset=300, epochs=1, threads=1, method="kd", export=False,
                  student_arch="resnet8", teacher=str(tmp_path / "run" / "teacher.pt"), teacher_arch="airbench")
    auto = compress(dict(common, student_init="auto", out=str(tmp_path / "auto")), show_progress=False,
                    log=lambda _m: None)
    assert auto["student"]["init"]["from"] == "random" and "stem" in auto["student"]["init"]["why"]
    with pytest.raises(PruneError, match="no 'stem"):
        compress(dict(common, student_init="teacher", out=str(tmp_path / "strict")), show_progress=False,
                 log=lambda _m: None)


def test_a_student_started_from_the_teacher_is_fine_tuned_at_a_fraction_of_the_rate():
    cfg = resolve_config("cpu")
    assert cfg.student_init == "auto"
    fine, scratch = student_train_config(cfg, 45000), student_train_config(replace(cfg, student_init="random"), 45000)
    assert fine.lr == pytest.approx(scratch.lr * FROM_TEACHER["lr_scale"]) and FROM_TEACHER["lr_scale"] < 1
    assert not fine.init_from_data and scratch.init_from_data  # the teacher's whitening is kept, not re-estimated
    assert student_train_config(replace(cfg, lr_scale=0.5), 45000).lr == pytest.approx(scratch.lr * 0.5)
