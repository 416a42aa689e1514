"""mnist_8k (default): two-stage GAP nets around 8,000 parameters, with the training recipe.

Parameters (names are stable; conv{i}_channels counts 3x3 convs from the input, 1-based):
s1_blocks, s2_blocks, conv{i}_channels, pad1, pad_last, transition, dropout, bn, head,
optimizer, sgd_lr / adam_lr, batch_size, rotate_deg, label_smoothing, weight_decay.
"""

from __future__ import annotations

from search_spaces._blocks import sample_recipe, two_stage_net, widths

ABOUT = "two-stage GAP nets for the 8k budget, plus optimizer, LR, batch, rotation, smoothing"
WIDTHS = [6, 8, 10, 12, 14, 16, 20, 24]


def sample(trial):
    n1 = trial.suggest_int("s1_blocks", 1, 3)
    n2 = trial.suggest_int("s2_blocks", 2, 4)
    chans = widths(trial, [f"conv{i}_channels" for i in range(1, n1 + n2 + 1)], WIDTHS)
    trans = trial.suggest_categorical("transition", [0, 8, 10, 12, 16])
    spec = two_stage_net(
        chans[:n1], chans[n1:],
        pad1=trial.suggest_categorical("pad1", [False, True]),
        pad_last=trial.suggest_categorical("pad_last", [False, True]),
        transition=trans,
        dropout=trial.suggest_float("dropout", 0.0, 0.15, step=0.025),
        bn=trial.suggest_categorical("bn", [True, False]),
        head=trial.suggest_categorical("head", ["gap_conv", "gap_linear"]),
    )
    return spec, sample_recipe(trial)


# The `baseline` preset expressed in this space's parameters (nas search --enqueue baseline).
KNOWN = {
    "baseline": {
        "s1_blocks": 2, "s2_blocks": 3, "conv1_channels": 8, "conv2_channels": 16,
        "conv3_channels": 16, "conv4_channels": 16, "conv5_channels": 16, "transition": 8,
        "pad1": False, "pad_last": True, "dropout": 0.05, "bn": True, "head": "gap_conv",
        "optimizer": "sgd", "sgd_lr": 0.1, "batch_size": 128, "rotate_deg": 7.0,
        "label_smoothing": 0.0, "weight_decay": 0.0,
    },
}
