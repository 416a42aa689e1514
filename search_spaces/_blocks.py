"""What the built-in spaces share: a two-stage conv net with a pool, transition and head."""

from __future__ import annotations

from nas.config import TrainConfig
from nas.spec import GAP, ArchSpec, Conv, Flatten, Linear, MaxPool, conv_block


def two_stage_net(
    stage1: list[int], stage2: list[int], *, pad1: bool, pad_last: bool, transition: int,
    dropout: float, bn: bool, head: str, expand: int = 0,
) -> ArchSpec:
    """3x3 blocks at full resolution, max-pool, optional 1x1 transition, 3x3 blocks, head.

    Channel lists give each 3x3 conv's width; ``transition`` 0 means none; ``expand`` > 0 adds
    a 1x1 conv block widening the last map before GAP (as the best public designs do: GAP of
    more channels is cheap in parameters). Head is ``gap_conv`` (GAP then 1x1 conv to 10) or
    ``gap_linear`` (GAP, flatten, linear with bias).
    """
    layers: list = []
    for c in stage1:
        layers += conv_block(c, 3, 1 if pad1 else 0, bn=bn, dropout=dropout)
    layers.append(MaxPool(2))
    if transition:
        layers.append(Conv(transition, 1))
    for i, c in enumerate(stage2):
        pad = 1 if pad_last and i == len(stage2) - 1 else 0
        layers += conv_block(c, 3, pad, bn=bn, dropout=dropout)
    if expand:
        layers += conv_block(expand, 1, bn=bn)
    layers.append(GAP())
    layers += [Conv(10, 1)] if head == "gap_conv" else [Flatten(), Linear(10)]
    return ArchSpec(layers=tuple(layers))


def sample_recipe(trial, lr_sgd=(0.02, 0.4), lr_adam=(1e-3, 2e-2)) -> TrainConfig:
    """The training knobs that decide a tiny net's fate in 15 epochs.

    Both schedules that work for tiny MNIST nets: OneCycle (peak ``lr``) and StepLR (``lr``
    divided by 10 after epoch 8, the best public 8k design's recipe). Augmentation is a random
    rotation plus an optional random shift of up to 1.4 or 2.8 pixels.
    """
    opt = trial.suggest_categorical("optimizer", ["sgd", "adam"])
    if opt == "sgd":
        lr = trial.suggest_float("sgd_lr", *lr_sgd, log=True)
    else:
        lr = trial.suggest_float("adam_lr", *lr_adam, log=True)
    return TrainConfig(
        optimizer=opt,
        lr=lr,
        nesterov=True,
        schedule=trial.suggest_categorical("schedule", ["onecycle", "step"]),
        step_size=8,
        gamma=0.1,
        batch_size=trial.suggest_categorical("batch_size", [64, 128]),
        rotate_deg=trial.suggest_float("rotate_deg", 0.0, 12.0, step=1.0),
        translate=trial.suggest_categorical("translate", [0.0, 0.05, 0.1]),
        label_smoothing=trial.suggest_float("label_smoothing", 0.0, 0.1, step=0.05),
        weight_decay=trial.suggest_categorical("weight_decay", [0.0, 1e-4]),
    )


def widths(trial, names: list[str], choices: list[int]) -> list[int]:
    return [trial.suggest_categorical(n, choices) for n in names]
