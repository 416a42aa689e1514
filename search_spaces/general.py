"""general (the default): one to three stages of 3x3 convs and the whole training recipe.

It holds every design we know of as one point each (``KNOWN``; a test rebuilds each preset
from its parameters): ``batch3``, ``baseline``, ``ref7918``, ``ref7070``, ``ref3762``,
``best8k`` and ``best5k``. The budget comes from the study (``--max-params``): widths are
drawn up to about sqrt(budget / 9), so one space serves 2k, 4k and 8k without a copy per budget.

Net, stage i = 1..stages:
  s{i}_convs (1-4) 3x3 convs of widths s{i}_w{j}; s{i}_pad: none | last | all (padding 1);
  a 2x2 max-pool after every stage but the last; before stage i > 1 an optional 1x1
  transition of width t{i} (t{i}_on), placed before or after the pool (trans_pos), bare or as
  a conv-BN-ReLU block (trans_block); an optional 1x1 squeeze and a 1x1 expansion block before
  global average pooling; the head: gap_conv (GAP, 1x1 conv), gap_linear (GAP, linear) or
  gap_block (a 1x1 block to the classes, then GAP); unit order bn_relu | relu_bn; bias on the
  3x3 convs and the head; dropout p after every 3x3 block or after every pool; init.
Recipe: optimizer (SGD with momentum 0 or 0.9, Nesterov or not; Adam), its learning rate,
  schedule (OneCycle with its warm-up, StepLR with its step, or the piecewise-linear ramp of
  ref3762), batch size, rotation, shift, zoom, how often the affine applies, its border and
  resampling, brightness/contrast jitter, label smoothing; a left-right mirror (hflip 0 or
  0.5) where the dataset does not rule it out (DatasetInfo.mirror: never for digits).
"""

from __future__ import annotations

import dataclasses
import math

from nas.config import TrainConfig
from nas.spaces import register_space
from nas.spec import (
    GAP,
    ArchSpec,
    Conv,
    Dropout,
    DWConv,
    Flatten,
    Linear,
    MaxPool,
    conv_block,
)

ABOUT = "1-3 stages of 1-4 3x3 convs, transitions, squeeze/expand, 3 heads, and the recipe"
VERSION = 1
DEFAULT_BUDGET = 8000  # when the trial has no study (FixedTrial) or the study no budget
# ref3762's schedule: lr x0.5 at epoch 0, the peak at 2, x0.1 at 8, 0 at 15; set per epoch
RAMP = ((0, 0.5), (2, 1.0), (8, 0.1), (15, 0.0))


def general_net(
    stages: list[list[int]], pads: list[str], transitions: list[int], *, trans_pos: str,
    trans_block: bool, squeeze: int, expand: int, head: str, order: str, bias: bool,
    dropout: float, dropout_at: str, init: str = "default", num_classes: int = 10,
    separable: list[bool] | None = None,
) -> ArchSpec:
    """The spec of one point of the space; ``transitions[i]`` (0: none) leads into stage i+1.

    ``separable[i]``: stage i+1's 3x3 convs are depthwise 3x3 then 1x1 (Keras'
    SeparableConv2D: nothing between the two), except the net's first conv, which sees the
    image's few channels and stays a full 3x3 conv.
    """
    relu_first = order == "relu_bn"
    separable = separable or [False] * len(stages)

    def block(c: int, k: int, pad: int = 0, conv_bias: bool = False, drop: float = 0.0,
              sep: bool = False):
        layers = conv_block(c, 1 if sep else k, 0 if sep else pad, bias=conv_bias,
                            relu_first=relu_first, dropout=drop)
        return (DWConv(k, pad), *layers) if sep else layers

    layers: list = []
    for i, widths in enumerate(stages):
        if i > 0:  # between stage i-1 and stage i: pool, transition, stage dropout
            t = transitions[i - 1]
            trans = (block(t, 1) if trans_block else (Conv(t, 1),)) if t else ()
            drop = (Dropout(dropout),) if dropout and dropout_at == "stage" else ()
            if trans_pos == "before_pool":
                layers += [*trans, MaxPool(2), *drop]
            else:
                layers += [MaxPool(2), *drop, *trans]
        for j, c in enumerate(widths):
            padded = pads[i] == "all" or (pads[i] == "last" and j == len(widths) - 1)
            layers += block(c, 3, 1 if padded else 0, bias,
                            dropout if dropout_at == "block" else 0.0,
                            sep=separable[i] and (i, j) != (0, 0))
    if squeeze:
        layers += block(squeeze, 1)
    if expand:
        layers += block(expand, 1)
    if head == "gap_block":
        layers += [*block(num_classes, 1), GAP()]
    elif head == "gap_linear":
        layers += [GAP(), Flatten(), Linear(num_classes)]
    else:
        layers += [GAP(), Conv(num_classes, 1, bias=bias)]
    return ArchSpec(layers=tuple(layers), num_classes=num_classes, init=init)


def _study_attr(trial, key: str, default: int) -> int:
    """The budget and the data's shape, which nas search stores on the study."""
    study = getattr(trial, "study", None)
    return int(study.user_attrs.get(key, default)) if study else default


def _mirror_allowed(trial) -> bool:
    """Whether a mirror may keep the label: the study's dataset says (None: unknown, so try
    it); a trial without a study (FixedTrial, a known design) is MNIST's: no."""
    study = getattr(trial, "study", None)
    return bool(study) and study.user_attrs.get("mirror", False) is not False


def _budget(trial) -> int:
    return _study_attr(trial, "max_params", DEFAULT_BUDGET)


def sample_net(trial, separable: bool = False) -> ArchSpec:
    """A net of the space; ``separable`` offers each stage separable convs (``s{i}_sep``),
    whose widths (``s{i}_sw{j}``) range wider, since a C -> W one costs 9C + CW, not 9CW."""
    budget = _budget(trial)
    hi = max(8, min(64, int(1.2 * math.sqrt(budget / 9))))  # a 3x3 WxW conv: 9 W^2
    hi_sep = max(8, min(128, int(1.2 * math.sqrt(budget))))  # a separable one: ~W^2

    def width(name: str, top: int = hi) -> int:
        return trial.suggest_int(name, 4, top, log=True)

    n = trial.suggest_int("stages", 1, 3)
    stages, pads, transitions, seps = [], [], [], []
    for i in range(1, n + 1):
        k = trial.suggest_int(f"s{i}_convs", 1, 4)
        sep = separable and trial.suggest_categorical(f"s{i}_sep", [False, True])
        # stage 1's first conv stays full (general_net), so it keeps the full conv's range
        stages.append([width(f"s{i}_sw{j}", hi_sep) if sep and (i, j) != (1, 1)
                       else width(f"s{i}_w{j}") for j in range(1, k + 1)])
        seps.append(sep)
        pads.append(trial.suggest_categorical(f"s{i}_pad", ["none", "last", "all"]))
        if i > 1:
            on = trial.suggest_categorical(f"t{i}_on", [False, True])
            transitions.append(width(f"t{i}") if on else 0)
    any_trans = any(transitions)
    squeeze = width("squeeze") if trial.suggest_categorical("squeeze_on", [False, True]) else 0
    expand = width("expand") if trial.suggest_categorical("expand_on", [False, True]) else 0
    dropout = trial.suggest_float("dropout", 0.0, 0.1, step=0.01)
    spec = general_net(
        stages, pads, transitions,
        trans_pos=trial.suggest_categorical("trans_pos", ["after_pool", "before_pool"])
        if any_trans else "after_pool",
        trans_block=trial.suggest_categorical("trans_block", [False, True])
        if any_trans else False,
        squeeze=squeeze, expand=expand,
        head=trial.suggest_categorical("head", ["gap_conv", "gap_linear", "gap_block"]),
        order=trial.suggest_categorical("order", ["bn_relu", "relu_bn"]),
        bias=trial.suggest_categorical("bias", [False, True]),
        dropout=dropout,
        dropout_at=trial.suggest_categorical("dropout_at", ["block", "stage"])
        if dropout > 0 else "block",
        init=trial.suggest_categorical("init", ["default", "xavier"]),
        num_classes=_study_attr(trial, "num_classes", 10),
        separable=seps,
    )
    return dataclasses.replace(spec, in_channels=_study_attr(trial, "in_channels", 1),
                               input_size=_study_attr(trial, "input_size", 28))


def sample_recipe(trial) -> TrainConfig:
    opt = trial.suggest_categorical("optimizer", ["sgd", "adam"])
    kw: dict = {"optimizer": opt}
    if opt == "sgd":
        kw["lr"] = trial.suggest_float("sgd_lr", 5e-3, 0.5, log=True)
        kw["momentum"] = trial.suggest_categorical("momentum", [0.0, 0.9])
        kw["nesterov"] = (trial.suggest_categorical("nesterov", [False, True])
                          if kw["momentum"] > 0 else False)
    else:
        kw["lr"] = trial.suggest_float("adam_lr", 5e-4, 2e-2, log=True)
    schedule = trial.suggest_categorical("schedule", ["onecycle", "step", "piecewise"])
    kw["schedule"] = schedule
    if schedule == "onecycle":
        kw["pct_start"] = trial.suggest_categorical("pct_start", [0.15, 0.25, 0.35])
    elif schedule == "step":
        kw["step_size"] = trial.suggest_categorical("step_size", [6, 8, 10])
    else:
        kw["knots"] = RAMP
    rotate = trial.suggest_float("rotate_deg", 0.0, 12.0, step=1.0)
    translate = trial.suggest_float("translate", 0.0, 0.1, step=0.01)
    scale = trial.suggest_float("scale", 0.0, 0.1, step=0.01)
    if rotate or translate or scale:
        kw["aug_p"] = trial.suggest_categorical("aug_p", [0.5, 1.0])
        kw["border"] = trial.suggest_categorical("border", ["zeros", "reflection"])
        kw["interp"] = trial.suggest_categorical("interp", ["bilinear", "nearest"])
    if _mirror_allowed(trial):
        kw["hflip"] = trial.suggest_categorical("hflip", [0.0, 0.5])
    return TrainConfig(
        batch_size=trial.suggest_categorical("batch_size", [32, 64, 128]),
        rotate_deg=rotate, translate=translate, scale=scale,
        jitter=trial.suggest_categorical("jitter", [0.0, 0.1, 0.2]),
        label_smoothing=trial.suggest_float("label_smoothing", 0.0, 0.1, step=0.05),
        **kw,
    )


def sample(trial):
    return sample_net(trial), sample_recipe(trial)


def _net(stages, pads, trans=None, **kw) -> dict:
    """KNOWN's net parameters from a compact description (tests check them against presets)."""
    p = {"stages": len(stages)}
    for i, (widths, pad) in enumerate(zip(stages, pads, strict=True), 1):
        p[f"s{i}_convs"] = len(widths)
        p.update({f"s{i}_w{j}": w for j, w in enumerate(widths, 1)})
        p[f"s{i}_pad"] = pad
        if i > 1:
            t = (trans or {}).get(i, 0)
            p[f"t{i}_on"] = bool(t)
            if t:
                p[f"t{i}"] = t
    sq, ex = kw.pop("squeeze", 0), kw.pop("expand", 0)
    p.update(squeeze_on=bool(sq), expand_on=bool(ex))
    if sq:
        p["squeeze"] = sq
    if ex:
        p["expand"] = ex
    base = {"head": "gap_conv", "order": "bn_relu", "bias": False, "dropout": 0.0,
            "init": "default"}
    return {**p, **base, **kw}


_NO_AUG = {"jitter": 0.0, "label_smoothing": 0.0, "translate": 0.0, "scale": 0.0}
_ROTATE = {"aug_p": 1.0, "border": "zeros", "interp": "bilinear"}


def _oc(lr, pct, rotate, ls) -> dict:  # best8k / best5k's recipe
    return {"optimizer": "adam", "adam_lr": lr, "schedule": "onecycle", "pct_start": pct,
            "batch_size": 32, **_NO_AUG, "rotate_deg": rotate, **_ROTATE, "label_smoothing": ls}


KNOWN = {
    "batch3": {
        **_net([[10, 16], [16, 16, 15]], ["none", "none"], {2: 10}, trans_pos="before_pool",
               trans_block=False, dropout=0.1, dropout_at="block"),
        "optimizer": "sgd", "sgd_lr": 0.01, "momentum": 0.9, "nesterov": False,
        "schedule": "step", "step_size": 6, "batch_size": 128, **_NO_AUG, "rotate_deg": 5.0,
        **_ROTATE,
    },
    "baseline": {
        **_net([[8, 16], [16, 16, 16]], ["none", "last"], {2: 8}, trans_pos="after_pool",
               trans_block=False, dropout=0.05, dropout_at="block"),
        "optimizer": "sgd", "sgd_lr": 0.1, "momentum": 0.9, "nesterov": True,
        "schedule": "onecycle", "pct_start": 0.25, "batch_size": 128, **_NO_AUG,
        "rotate_deg": 7.0, **_ROTATE,
    },
    "ref7918": {
        **_net([[10, 10, 10], [16, 16, 8, 8]], ["all", "none"], squeeze=8, expand=16),
        "optimizer": "adam", "adam_lr": 0.005, "schedule": "step", "step_size": 8,
        "batch_size": 64, **_NO_AUG, "rotate_deg": 7.0, **_ROTATE, "interp": "nearest",
    },
    "ref7070": {
        **_net([[10, 10, 20], [10, 10, 20]], ["none", "none"], {2: 10}, trans_pos="after_pool",
               trans_block=True, head="gap_block", order="relu_bn", bias=True),
        "optimizer": "sgd", "sgd_lr": 0.01, "momentum": 0.9, "nesterov": False,
        "schedule": "step", "step_size": 10, "batch_size": 128, **_NO_AUG, "rotate_deg": 0.0,
    },
    "ref3762": {
        **_net([[4, 4, 4], [8, 8, 8], [8, 8, 8]], ["all", "all", "all"], bias=True,
               dropout=0.01, dropout_at="stage", init="xavier"),
        "optimizer": "sgd", "sgd_lr": 0.1, "momentum": 0.0, "schedule": "piecewise",
        "batch_size": 32, "rotate_deg": 7.0, "translate": 0.09, "scale": 0.09, "aug_p": 0.5,
        "border": "reflection", "interp": "bilinear", "jitter": 0.2, "label_smoothing": 0.0,
    },
    "best8k": {
        **_net([[10, 10, 10], [12, 12, 8, 8]], ["all", "none"], squeeze=16, expand=24),
        **_oc(0.00729666824498446, 0.15, 11.0, 0.0),
    },
    "best5k": {
        **_net([[8, 8, 8], [10, 10, 8, 8]], ["all", "none"], squeeze=12, expand=12),
        **_oc(0.009878240542088886, 0.35, 7.0, 0.0),
    },
}

SPACE = register_space("general", sample, about=ABOUT, known=KNOWN, version=VERSION)
