"""mnist_8k_oc: ref7918's shape at 6-8k parameters, with Adam + OneCycle + batch 32 fixed.

A narrow example space: the recipe is fixed, so every trial goes to the widths and the
continuous knobs, and the median pruner compares runs at the same point of one lr curve. Why
this recipe, and what the space found (best8k): docs/experiments.md.

Parameters: stem_channels, mid_channels, late_channels, squeeze, expand, adam_lr, pct_start,
rotate_deg, label_smoothing.
"""

from __future__ import annotations

from nas.config import TrainConfig
from nas.spaces import register_space
from search_spaces.mnist_8k_ref import ref_shaped

ABOUT = "ref7918's shape, 6-8k params, Adam + OneCycle + batch 32 fixed (s8kref's winning recipe)"


def onecycle_recipe(trial) -> TrainConfig:
    """found7k2's recipe with its continuous knobs searched around their winning values."""
    return TrainConfig(
        optimizer="adam", schedule="onecycle", batch_size=32,
        lr=trial.suggest_float("adam_lr", 4e-3, 1.2e-2, log=True),
        pct_start=trial.suggest_categorical("pct_start", [0.15, 0.25, 0.35]),
        rotate_deg=trial.suggest_float("rotate_deg", 6.0, 12.0, step=1.0),
        label_smoothing=trial.suggest_float("label_smoothing", 0.0, 0.1, step=0.05),
    )


def sample(trial):
    spec = ref_shaped(
        stem=trial.suggest_categorical("stem_channels", [8, 10, 12]),
        mid=trial.suggest_categorical("mid_channels", [12, 14, 16]),
        late=trial.suggest_categorical("late_channels", [8, 10, 12]),
        squeeze=trial.suggest_categorical("squeeze", [10, 12, 16]),
        expand=trial.suggest_categorical("expand", [16, 20, 24]),
    )
    return spec, onecycle_recipe(trial)


# found7k2 (s8kref trial 28, 7,034 params), less its EMA, which made no measurable difference.
KNOWN = {
    "found7k2": {
        "stem_channels": 10, "mid_channels": 12, "late_channels": 10, "squeeze": 16,
        "expand": 16, "adam_lr": 0.007187253222664814, "pct_start": 0.25, "rotate_deg": 10.0,
        "label_smoothing": 0.0,
    },
}


SPACE = register_space("mnist_8k_oc", sample, about=ABOUT, known=KNOWN)
