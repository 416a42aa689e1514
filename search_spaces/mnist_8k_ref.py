"""mnist_8k_ref: ref7918's shape, with its widths and an Adam recipe searched.

The shape is fixed: three padded 3x3 convs at 28x28, max-pool, four unpadded 3x3 convs, a 1x1
squeeze and a 1x1 expansion, GAP and a 1x1 conv head; every unit conv -> BN -> ReLU, no bias.
Widths are tied in pairs (five knobs), so a few dozen trials cover them. History:
docs/experiments.md.

Parameters: stem_channels (3 convs), mid_channels (convs 4-5), late_channels (convs 6-7),
squeeze, expand, adam_lr, schedule, step_size, batch_size, rotate_deg, translate,
label_smoothing, ema.
"""

from __future__ import annotations

from nas.config import TrainConfig
from nas.spaces import register_space
from nas.spec import GAP, ArchSpec, Conv, MaxPool, conv_block

ABOUT = "ref7918's shape with widths and recipe searched (Adam, StepLR/OneCycle, EMA)"


def ref_shaped(stem: int, mid: int, late: int, squeeze: int, expand: int) -> ArchSpec:
    """Convs 4-5 share a width, as do convs 6-7; ref7918 is ref_shaped(10, 16, 8, 8, 16)."""
    layers = [*conv_block(stem, 3, 1), *conv_block(stem, 3, 1), *conv_block(stem, 3, 1)]
    layers += [MaxPool(2), *conv_block(mid), *conv_block(mid), *conv_block(late), *conv_block(late)]
    layers += [*conv_block(squeeze, 1), *conv_block(expand, 1), GAP(), Conv(10, 1)]
    return ArchSpec(layers=tuple(layers))


def sample(trial):
    spec = ref_shaped(
        stem=trial.suggest_categorical("stem_channels", [8, 10, 12]),
        mid=trial.suggest_categorical("mid_channels", [12, 14, 16]),
        late=trial.suggest_categorical("late_channels", [8, 10, 12]),
        squeeze=trial.suggest_categorical("squeeze", [8, 10, 12, 16]),
        expand=trial.suggest_categorical("expand", [16, 20, 24, 32]),
    )
    schedule = trial.suggest_categorical("schedule", ["step", "onecycle"])
    cfg = TrainConfig(
        optimizer="adam",
        lr=trial.suggest_float("adam_lr", 2e-3, 1.5e-2, log=True),
        schedule=schedule,
        step_size=trial.suggest_categorical("step_size", [6, 8, 10]) if schedule == "step" else 8,
        gamma=0.1,
        batch_size=trial.suggest_categorical("batch_size", [32, 64, 128]),
        rotate_deg=trial.suggest_float("rotate_deg", 0.0, 12.0, step=1.0),
        translate=trial.suggest_categorical("translate", [0.0, 0.05, 0.1]),
        label_smoothing=trial.suggest_float("label_smoothing", 0.0, 0.1, step=0.05),
        ema=trial.suggest_categorical("ema", [0.0, 0.99, 0.995, 0.999]),
    )
    return spec, cfg


# ref7918 itself (7,918 params) with its recipe, so the study starts from the best public design.
KNOWN = {
    "ref7918": {
        "stem_channels": 10, "mid_channels": 16, "late_channels": 8, "squeeze": 8, "expand": 16,
        "schedule": "step", "adam_lr": 0.005, "step_size": 8, "batch_size": 64,
        "rotate_deg": 7.0, "translate": 0.0, "label_smoothing": 0.0, "ema": 0.0,
    },
}


SPACE = register_space("mnist_8k_ref", sample, about=ABOUT, known=KNOWN)
