"""Named architectures with their training recipes: a registry, as timm's ``@register_model``.

``batch1``-``batch3`` reproduce the hand-made, batch-by-batch development that ``nas`` replaces;
``baseline`` is a careful hand design; ``ref7918`` / ``ref7070`` re-implement public designs;
``best8k`` and the like were found by ``nas search`` and are loaded from ``nas/found/*.json``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nas.config import TrainConfig
from nas.registry import Registry
from nas.spec import GAP, ArchSpec, Conv, Dropout, MaxPool, conv_block


@dataclass(frozen=True)
class Preset:
    name: str
    spec: ArchSpec
    train: TrainConfig
    about: str


PRESETS: Registry[Callable[[], Preset]] = Registry("preset")
register = PRESETS.register()  # @register: the function's name is the preset's


# Designs the search found ship as data, not code: nas/found/<name>.json, written by `nas export`
# as preset.json (spec, recipe and where it came from) and copied here.
FOUND_DIR = Path(__file__).with_name("found")


def _found(path: Path) -> Callable[[], Preset]:
    def load() -> Preset:
        d = json.loads(path.read_text())
        return Preset(path.stem, ArchSpec.from_dict(d["spec"]), TrainConfig.from_dict(d["train"]),
                      d["about"])

    return load


def found_source(name: str) -> dict | None:
    """Where a found preset came from (study, trial, command), or None for a hand-made one."""
    path = FOUND_DIR / f"{name}.json"
    return json.loads(path.read_text()).get("source") if path.is_file() else None


def list_presets() -> list[str]:
    return PRESETS.names()


def get_preset(name: str) -> Preset:
    return PRESETS.get(name)()


def _spec(*layers) -> ArchSpec:
    flat = []
    for item in layers:
        flat.extend(item if isinstance(item, tuple) else (item,))
    return ArchSpec(layers=tuple(flat))


# The hand-made batches trained as such notebooks do: SGD lr 0.01, momentum 0.9, batch 128.
_HANDMADE = TrainConfig(optimizer="sgd", lr=0.01, momentum=0.9, nesterov=False, schedule="constant")


@register
def batch1() -> Preset:
    def c(out, pad=1, relu=True):
        return conv_block(out, 3, pad, bn=False, relu=relu, bias=True)

    spec = _spec(
        c(32), c(64), MaxPool(2), c(128), c(256), MaxPool(2),
        c(512, 0), c(1024, 0), c(10, 0, relu=False),
    )
    return Preset("batch1", spec, _HANDMADE, "vanilla net: 6.4M params, no BN, no dropout")


@register
def batch2() -> Preset:
    def c(out, k=3):
        return conv_block(out, k, dropout=0.1)

    spec = _spec(
        c(10), c(10), c(20), MaxPool(2), c(10, 1), c(10), c(20), c(10, 1),
        Conv(10, 7),  # 7x7 map -> 1x1 logits, no BN or ReLU
    )
    return Preset("batch2", spec, _HANDMADE, "skeleton: squeeze and expand, max-pool, BN, dropout")


@register
def batch3() -> Preset:
    def c(out):
        return conv_block(out, dropout=0.1)

    spec = _spec(
        c(10), c(16), Conv(10, 1), MaxPool(2), c(16), c(16), c(15), GAP(), Conv(10, 1),
    )
    cfg = TrainConfig(
        optimizer="sgd", lr=0.01, momentum=0.9, nesterov=False, schedule="step", step_size=6,
        gamma=0.1, rotate_deg=5.0,
    )
    return Preset("batch3", spec, cfg, "GAP head, 10% dropout everywhere, 5 degree rotation")


@register
def baseline() -> Preset:
    def c(out, pad=0):
        return conv_block(out, 3, pad, dropout=0.05)

    spec = _spec(
        c(8), c(16), MaxPool(2), Conv(8, 1), c(16), c(16), c(16, 1), GAP(), Conv(10, 1),
    )
    cfg = TrainConfig(
        optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, schedule="onecycle",
        batch_size=128, rotate_deg=7.0,
    )
    return Preset("baseline", spec, cfg, "careful hand design: 7,416 params, OneCycle, rotation")


@register
def ref7918() -> Preset:
    def c(out, k=3, pad=0):
        return conv_block(out, k, pad)

    spec = _spec(
        c(10, pad=1), c(10, pad=1), c(10, pad=1), MaxPool(2),
        c(16), c(16), c(8), c(8), c(8, 1), c(16, 1), GAP(), Conv(10, 1),
    )
    cfg = TrainConfig(
        optimizer="adam", lr=0.005, schedule="step", step_size=8, gamma=0.1, batch_size=64,
        rotate_deg=7.0, interp="nearest",
    )
    return Preset("ref7918", spec, cfg, "best public design known: 7,918 params, Adam + StepLR")


@register
def ref7070() -> Preset:
    def c(out, k=3):
        return conv_block(out, k, bias=k == 3, relu_first=True)

    spec = _spec(
        c(10), c(10), c(20), MaxPool(2), c(10, 1), c(10), c(10), c(20), c(10, 1), GAP(),
    )
    cfg = TrainConfig(
        optimizer="sgd", lr=0.01, momentum=0.9, nesterov=False, schedule="step", step_size=10,
        gamma=0.1, batch_size=128,
    )
    return Preset("ref7070", spec, cfg, "public design: 7,070 params, conv-ReLU-BN, no head")


for _path in sorted(FOUND_DIR.glob("*.json")):
    PRESETS.add(_path.stem, _found(_path))


@register
def ref3762() -> Preset:
    def stage(c_out, *extra):
        return (*[layer for _ in range(3) for layer in conv_block(c_out, 3, 1, bias=True)],
                *extra)

    spec = _spec(
        stage(4, MaxPool(2), Dropout(0.01)), stage(8, MaxPool(2), Dropout(0.01)), stage(8),
        GAP(), Conv(10, 1, bias=True),
    )
    spec = dataclasses.replace(spec, init="xavier")
    cfg = TrainConfig(
        optimizer="sgd", lr=0.1, momentum=0.0, nesterov=False, batch_size=32,
        schedule="piecewise", knots=((0, 0.5), (2, 1.0), (8, 0.1), (15, 0.0)),
        rotate_deg=7.0, translate=0.09, scale=0.09, aug_p=0.5, border="reflection",
        jitter=0.2, jitter_p=0.5,
    )
    return Preset("ref3762", spec, cfg, "public 3,762-param design: 3 stages, plain SGD, "
                  "piecewise lr; claims 99.52% from one run")
