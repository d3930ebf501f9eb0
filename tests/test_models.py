import textwrap

import pytest
import torch
from torch import nn

from edgekd.errors import EdgekdError
from edgekd.models import create_model, list_models
from edgekd.models.checkpoint import load_model, save_model
from edgekd.models.complexity import count_macs, count_params
from edgekd.models.features import FeatureTaps, auto_pairs, check_pairs
from edgekd.models.registry import get_default_cfg
from edgekd.models.sources import build_arch, load_model as load_any
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


def test_families_match_published_sizes():
    # chenyaofo/pytorch-cifar-models: ResNet-20 0.27 M / 40.8 M MACs, MobileNetV2 x0.5 0.70 M / 28 M MACs
    r20, m05 = create_model("resnet20"), create_model("mobilenetv2_x0_5")
    assert round(count_params(r20) / 1e6, 2) == 0.27 and round(count_macs(r20) / 1e6, 1) == 40.8
    assert round(count_params(m05) / 1e6, 2) == 0.70 and round(count_macs(m05) / 1e6) == 28
    assert count_params(create_model("resnet8")) < 80_000
    wide = create_model("mobilenetv2_cifar", width_mult=0.5, stem_stride=2, stage2_stride=2)
    assert wide(torch.zeros(1, 3, 96, 96)).shape == (1, 10)  # large inputs with ImageNet strides
    a = create_model("airbench")
    assert a(torch.zeros(2, 3, 32, 32)).shape == (2, 10) and a(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
    # the converging CPU students: ResNet-32 0.47 M; airbench93's widths 64/128/128 ≈ 0.57 M and 54 M MACs;
    # the cpu preset's airbench ×0.5 is airbench(width_mult=0.5), layer for layer
    assert round(count_params(create_model("resnet32")) / 1e6, 2) == 0.47
    a93 = create_model("airbench93")
    assert count_params(a93) == 569_656 and round(count_macs(a93) / 1e6) == 54
    half, scaled = create_model("airbench_x0_5"), create_model("airbench", width_mult=0.5)
    assert half.config == scaled.config and count_params(half) == 498_104


def test_width_scaled_student_trades_compute():
    full = create_model("student", cf=4.12)
    thin = create_model("student", cf=4.12, early_width=0.5)
    assert count_macs(thin) < 0.75 * count_macs(full)
    assert count_params(thin) < count_params(full)


@pytest.mark.parametrize("cf", [0.5, float("nan"), 3.0, 5000])
def test_impossible_compression_factor(cf):
    with pytest.raises(EdgekdError):
        create_model("student", cf=cf)


def test_registry_names_defaults_and_rejects_unknown_arguments():
    with pytest.raises(EdgekdError, match="unknown model"):
        create_model("resnet9000")
    assert {"mobilenetv2_cifar", "student", "resnet20", "mobilenetv2_x0_5", "airbench"} <= set(list_models())
    cfg = get_default_cfg("resnet20")
    assert cfg["input_size"] == (3, 32, 32) and cfg["classifier"] == "fc" and len(cfg["mean"]) == 3
    with pytest.raises(EdgekdError, match=r"student does not take argument\(s\) width_mult.*it takes: cf"):
        create_model("student", width_mult=0.5)
    with pytest.raises(EdgekdError, match="depth must be 6n"):
        create_model("resnet_cifar", depth=9)
    m = create_model("resnet20", num_classes=3)
    assert m(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
    assert m.forward_head(m.forward_features(torch.zeros(1, 3, 32, 32)), pre_logits=True).shape == (1, 64)


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
    with pytest.raises(EdgekdError, match="plain state_dict"):
        load_model(tmp_path / "bare.pt")
    # a 100-class checkpoint for a 10-class model: the message names the class count
    big = create_model("student", cf=54.59, num_classes=100)
    torch.save(big.state_dict(), tmp_path / "c100.pt")
    with pytest.raises(EdgekdError, match="predict 100 classes .* built for 10"):
        load_any(tmp_path / "c100.pt", arch="student", kwargs={"cf": 54.59}, num_classes=10)


def test_reference_key_layouts_load(tmp_path):
    """The authors' students come as features.* or front_layers/middle_layer/end_layers, head as classifier.1."""
    s = create_model("student", cf=4.12).eval()
    sd = s.state_dict()
    split = {}
    for k, v in sd.items():
        if k.startswith("features."):
            i, rest = k.split(".", 2)[1:]
            i = int(i)
            k = f"front_layers.{i}.{rest}" if i < 9 else f"middle_layer.{rest}" if i == 9 else f"end_layers.{i - 10}.{rest}"
        split[k] = v
    torch.save(split, tmp_path / "split.pt")
    m = load_any(tmp_path / "split.pt", arch="student", kwargs={"cf": 4.12}).model
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(m(x), s(x))


def test_pickled_objects_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(EdgekdError, match="never unpickles"):
        load_model(tmp_path / "evil.pt", arch="student")
    torch.save(nn.Sequential(nn.Linear(2, 2)), tmp_path / "module.pt")  # a whole pickled module
    with pytest.raises(EdgekdError, match="never unpickles"):
        load_any(tmp_path / "module.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(EdgekdError):
        load_model(tmp_path / "junk.pt", arch="student")


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.body(x).flatten(1))


def test_torchscript_and_exported_programs_load(tmp_path):
    m = _Tiny().eval()
    x = torch.randn(3, 3, 16, 16)
    torch.jit.save(torch.jit.script(m), tmp_path / "m.ts")
    fixed = torch.export.export(m, (torch.zeros(1, 3, 16, 16),))  # exported for batch 1 only
    torch.export.save(fixed, tmp_path / "fixed.pt2")
    dyn = torch.export.export(m, (torch.zeros(2, 3, 16, 16),), dynamic_shapes=({0: torch.export.Dim("b")},))
    torch.export.save(dyn, tmp_path / "dyn.pt2")
    for name, kind in (("m.ts", "torchscript"), ("fixed.pt2", "exported"), ("dyn.pt2", "exported")):
        loaded = load_any(tmp_path / name)
        assert loaded.kind == kind
        torch.testing.assert_close(loaded.model(x), m(x))
    with pytest.raises(EdgekdError, match="holds its own architecture"):
        load_any(tmp_path / "m.ts", arch="student")


def test_user_entry_point_and_its_arguments(tmp_path, monkeypatch):
    (tmp_path / "unit_nets.py").write_text(textwrap.dedent("""
        from torch import nn
        def tiny(num_classes=10, width=8):
            return nn.Sequential(nn.Conv2d(3, width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
        NOT_A_MODEL = 3
    """))
    monkeypatch.chdir(tmp_path)
    got = build_arch("unit_nets:tiny", {"width": 4})
    assert got.kind == "entrypoint" and got.model(torch.zeros(1, 3, 8, 8)).shape == (1, 10)
    assert build_arch(f"{tmp_path / 'unit_nets.py'}:tiny").model[0].out_channels == 8
    with pytest.raises(EdgekdError, match=r"does not take argument\(s\) depth.*it takes: num_classes, width"):
        build_arch("unit_nets:tiny", {"depth": 3})
    with pytest.raises(EdgekdError, match="cannot import"):
        build_arch("nosuchpkg.nets:tiny")
    with pytest.raises(EdgekdError, match="no callable"):
        build_arch("unit_nets:NOT_A_MODEL")


def test_macs_count_any_module():
    m = _Tiny().eval()
    eager = count_macs(m, (1, 3, 16, 16))
    assert eager == 3 * 8 * 9 * 16 * 16 + 8 * 4
    assert count_macs(torch.jit.script(m), (1, 3, 16, 16)) == eager


def test_feature_taps_and_automatic_attention_pairs():
    student, teacher = create_model("student", cf=4.12), create_model("mobilenetv2_cifar")
    # the paper's own student and teacher: the same stage-end names
    assert auto_pairs(student, teacher, (1, 3, 32, 32)) == [(f"features.{i}", f"features.{i}") for i in (1, 3, 6, 10, 13)]
    # across architectures: by resolution (airbench's unpadded stem makes 15/7/3 maps: near 16/8/4)
    pairs = auto_pairs(create_model("mobilenetv2_x0_5"), create_model("airbench"), (1, 3, 32, 32))
    assert [t for _, t in pairs] == ["block1", "block2", "block3"]
    pairs = auto_pairs(create_model("resnet20"), create_model("mobilenetv2_cifar"), (1, 3, 32, 32))
    assert [s for s, _ in pairs] == ["layer1", "layer2", "layer3"]
    taps = FeatureTaps(student, ["features.6"])
    student(torch.zeros(2, 3, 32, 32))
    (f,) = taps.take()
    assert f.shape == (2, 32, 16, 16)
    taps.remove()
    with pytest.raises(EdgekdError, match="has no module 'features.99'"):
        FeatureTaps(student, ["features.99"])
    with pytest.raises(EdgekdError, match="more than 4/3"):
        check_pairs(student, teacher, [("features.1", "features.13")], (1, 3, 32, 32))
    with pytest.raises(EdgekdError, match="share no feature-map resolution"):
        auto_pairs(create_model("resnet20", stem_stride=2), _Tiny(), (1, 3, 32, 32))  # 16/8/4 vs 32 only


def test_a_named_builder_round_trips_through_its_file(tmp_path):
    """A file records its builder's arguments, not the class's: mobilenetv2_x0_5 fixes width_mult and refuses it."""
    from edgekd.models.checkpoint import load_model
    from edgekd.models.sources import build_arch, builder_arguments, save_model

    for arch, kwargs in (("mobilenetv2_x0_5", {"num_classes": 10}), ("student", {"cf": 4.12, "num_classes": 10}),
                         ("resnet_cifar", {"depth": 8, "num_classes": 10})):
        built = build_arch(arch, kwargs)
        save_model(tmp_path / f"{arch}.pt", built.model, arch, builder_arguments(built))
        model, info = load_model(tmp_path / f"{arch}.pt")
        assert info["arch"] == arch and sum(p.numel() for p in model.parameters()) == \
            sum(p.numel() for p in built.model.parameters())
