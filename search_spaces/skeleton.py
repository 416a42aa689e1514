"""skeleton: spans the hand-made development, from the batch2 skeleton to GAP designs.

Stage widths from 8 to 32 (squeeze-and-expand), BN and dropout on or off, and both heads.
Much of it is over 8,000 parameters: a study here shows the budget gate at work.
"""

from __future__ import annotations

from nas.spaces import register_space
from search_spaces._blocks import sample_recipe, two_stage_net, widths

ABOUT = "the hand-made skeleton's family: widths 8-32, BN/dropout on or off, both heads"
WIDTHS = [8, 10, 16, 20, 32]


def sample(trial):
    n1 = trial.suggest_int("s1_blocks", 2, 3)
    n2 = trial.suggest_int("s2_blocks", 2, 4)
    chans = widths(trial, [f"conv{i}_channels" for i in range(1, n1 + n2 + 1)], WIDTHS)
    spec = two_stage_net(
        chans[:n1], chans[n1:], pad1=False, pad_last=False,
        transition=trial.suggest_categorical("transition", [0, 10]),
        dropout=trial.suggest_categorical("dropout", [0.0, 0.1]),
        bn=trial.suggest_categorical("bn", [True, False]),
        head=trial.suggest_categorical("head", ["gap_conv", "gap_linear"]),
    )
    return spec, sample_recipe(trial)


SPACE = register_space("skeleton", sample, about=ABOUT)
