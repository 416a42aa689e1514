"""mnist_8k: two-stage GAP nets up to about 8,000 parameters, with the training recipe.

Parameters (names are stable; conv{i}_channels counts 3x3 convs from the input, 1-based):
s1_blocks, s2_blocks, conv{i}_channels, pad1, pad_last, transition, expand, dropout, head,
optimizer, sgd_lr / adam_lr, schedule, batch_size, rotate_deg, translate, label_smoothing,
weight_decay. Batch norm is always on; widths go down to 4, so the same space covers 2k-8k.
"""

from __future__ import annotations

from nas.spaces import register_space
from search_spaces._blocks import sample_recipe, two_stage_net, widths

ABOUT = "two-stage GAP nets up to the 8k budget (widths 4-20), plus the training recipe"
WIDTHS = [4, 6, 8, 10, 12, 14, 16, 20]


def sample(trial):
    n1 = trial.suggest_int("s1_blocks", 1, 3)
    n2 = trial.suggest_int("s2_blocks", 2, 4)
    chans = widths(trial, [f"conv{i}_channels" for i in range(1, n1 + n2 + 1)], WIDTHS)
    spec = two_stage_net(
        chans[:n1], chans[n1:],
        pad1=trial.suggest_categorical("pad1", [False, True]),
        pad_last=trial.suggest_categorical("pad_last", [False, True]),
        transition=trial.suggest_categorical("transition", [0, 8, 10, 12, 16]),
        expand=trial.suggest_categorical("expand", [0, 16, 24, 32]),
        dropout=trial.suggest_float("dropout", 0.0, 0.1, step=0.025),
        bn=True,
        head=trial.suggest_categorical("head", ["gap_conv", "gap_linear"]),
    )
    return spec, sample_recipe(trial)


# Known designs in this space's parameters (nas search --enqueue NAME).
KNOWN = {
    "baseline": {
        "s1_blocks": 2, "s2_blocks": 3, "conv1_channels": 8, "conv2_channels": 16,
        "conv3_channels": 16, "conv4_channels": 16, "conv5_channels": 16, "transition": 8,
        "pad1": False, "pad_last": True, "expand": 0, "dropout": 0.05, "head": "gap_conv",
        "optimizer": "sgd", "sgd_lr": 0.1, "schedule": "onecycle", "batch_size": 128,
        "rotate_deg": 7.0, "translate": 0.0, "label_smoothing": 0.0, "weight_decay": 0.0,
    },
    # ref7918 as close as this space gets: its two 1x1 convs (8->8, 8->16) become one 8->16
    # expansion, 7,838 params; same recipe (Adam 0.005, StepLR 8/0.1, batch 64, 7 degrees).
    "ref7918": {
        "s1_blocks": 3, "s2_blocks": 4, "conv1_channels": 10, "conv2_channels": 10,
        "conv3_channels": 10, "conv4_channels": 16, "conv5_channels": 16, "conv6_channels": 8,
        "conv7_channels": 8, "transition": 0, "pad1": True, "pad_last": False, "expand": 16,
        "dropout": 0.0, "head": "gap_conv", "optimizer": "adam", "adam_lr": 0.005,
        "schedule": "step", "batch_size": 64, "rotate_deg": 7.0, "translate": 0.0,
        "label_smoothing": 0.0, "weight_decay": 0.0,
    },
}


SPACE = register_space("mnist_8k", sample, about=ABOUT, known=KNOWN)
