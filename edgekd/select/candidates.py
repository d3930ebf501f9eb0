"""The student search space as data: registered families and the knobs that change latency.

A candidate is a registry name and builder arguments. Each family lists the arguments it
varies (truncation depth, width, early-block width, the stride that sets the working
resolution, ResNet depth); the space is their grid. Adding a family is adding a row.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field

from edgekd.errors import EdgekdError


@dataclass(frozen=True)
class Family:
    name: str
    arch: str  # registry name
    grid: dict  # builder argument → values tried
    description: str = ""


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("truncated", "student", {"blocks_removed": (3, 5, 7), "early_width": (1.0, 0.5), "stage2_stride": (1, 2)},
           "the paper's truncated MobileNetV2: depth, width of the 32×32 blocks, resolution from stage 2"),
    Family("mobilenetv2", "mobilenetv2_cifar", {"width_mult": (0.35, 0.5, 0.75), "stage2_stride": (1, 2)},
           "width-scaled CIFAR MobileNetV2"),
    Family("resnet", "resnet_cifar", {"depth": (8, 20, 32), "width": (8, 16), "stem_stride": (1, 2)},
           "CIFAR ResNet: depth 6n+2, base width, stem stride (16×16 working resolution at 2)"),
    Family("airbench", "airbench", {"width_mult": (0.25, 0.375, 0.5)},
           "the width-scaled airbench teacher: dense 3×3 convolutions, working resolution halved by every group"),
)}
DEFAULT_FAMILIES = tuple(FAMILIES)
# The paper's 4.12× student: every table places it, whether or not it is on the front.
PAPER_STUDENT = ("student", {"blocks_removed": 5})


@dataclass(frozen=True)
class Candidate:
    arch: str
    kwargs: tuple = field(default_factory=tuple)  # sorted (name, value) pairs: hashable, stable order
    family: str = ""

    @classmethod
    def make(cls, arch: str, kwargs: dict | None = None, family: str = "") -> "Candidate":
        return cls(arch, tuple(sorted((kwargs or {}).items())), family)

    @property
    def arguments(self) -> dict:
        return dict(self.kwargs)

    @property
    def key(self) -> str:
        """A file-name-safe id, e.g. ``student-blocks_removed5-early_width0.5``."""
        return "-".join([self.arch] + [f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}" for k, v in self.kwargs])

    @property
    def label(self) -> str:
        return f"{self.arch}({', '.join(f'{k}={v}' for k, v in self.kwargs)})"

    def to_dict(self) -> dict:
        return {"key": self.key, "family": self.family, "arch": self.arch, "kwargs": self.arguments}


def parse_families(names: str | list[str] | tuple | None) -> tuple[str, ...]:
    if names is None or names == "all":
        return DEFAULT_FAMILIES
    items = names.split(",") if isinstance(names, str) else list(names)
    chosen = tuple(n.strip() for n in items if n.strip())
    unknown = [n for n in chosen if n not in FAMILIES]
    if unknown or not chosen:
        raise EdgekdError(f"unknown student famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown) or '(none)'}",
                          f"choose from: {', '.join(FAMILIES)}")
    return chosen


def parse_candidates(items: list) -> list[Candidate]:
    """The user's own candidates: ``"resnet8"`` or ``{arch = "resnet_cifar", kwargs = {depth = 14}}`` each."""
    from edgekd.models.registry import check_arguments, get_entry

    out = []
    for item in items:
        if isinstance(item, str):
            arch, kwargs = item, {}
        elif isinstance(item, dict) and isinstance(item.get("arch"), str) and set(item) <= {"arch", "kwargs", "family"} \
                and isinstance(item.get("kwargs", {}), dict):
            arch, kwargs = item["arch"], item.get("kwargs", {})
        else:
            raise EdgekdError(f"bad candidate {item!r}",
                              'write a registry name or {arch = "resnet_cifar", kwargs = {depth = 14}}')
        check_arguments(arch, get_entry(arch).builder, kwargs)
        out.append(Candidate.make(arch, kwargs, item.get("family", "user") if isinstance(item, dict) else "user"))
    if not out:
        raise EdgekdError("the candidate list is empty", "name at least one candidate, or use the families")
    return out


def enumerate_candidates(families: str | list[str] | tuple | None = None, candidates: list | None = None) -> list[Candidate]:
    """Every grid point of the chosen families, plus the paper's 4.12× student, in a fixed order —
    or exactly the user's ``candidates`` when given."""
    if candidates:
        return parse_candidates(candidates)
    out: list[Candidate] = []
    for name in parse_families(families):
        fam = FAMILIES[name]
        keys = list(fam.grid)
        for values in itertools.product(*(fam.grid[k] for k in keys)):
            out.append(Candidate.make(fam.arch, dict(zip(keys, values)), name))
    paper = Candidate.make(*PAPER_STUDENT, "truncated")
    if all(c.key != paper.key and not _same_model(c, paper) for c in out):
        out.append(paper)
    return out


def _same_model(a: Candidate, b: Candidate) -> bool:
    """Equal builds: arguments at their defaults may be given or left out."""
    import inspect

    from edgekd.models.registry import get_entry

    if a.arch != b.arch:
        return False
    params = inspect.signature(get_entry(a.arch).builder).parameters
    full = lambda c: {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty} | c.arguments
    return json.dumps(full(a), sort_keys=True) == json.dumps(full(b), sort_keys=True)


def is_paper_student(c: Candidate) -> bool:
    return _same_model(c, Candidate.make(*PAPER_STUDENT))


def build(c: Candidate, num_classes: int):
    """The candidate as an (untrained) torch module."""
    from edgekd.models.registry import create_model

    return create_model(c.arch, num_classes=num_classes, **c.arguments)
