"""mnist_2k: the same two-stage family, narrower, for a budget of about 2,000 parameters.

Use with --max-params 2000.
"""

from __future__ import annotations

from nas.spaces import register_space
from search_spaces._blocks import sample_recipe, two_stage_net, widths

ABOUT = "narrow two-stage GAP nets for a ~2,000-parameter budget (use --max-params 2000)"
WIDTHS = [4, 6, 8, 10, 12]


def sample(trial):
    n1 = trial.suggest_int("s1_blocks", 1, 2)
    n2 = trial.suggest_int("s2_blocks", 2, 3)
    chans = widths(trial, [f"conv{i}_channels" for i in range(1, n1 + n2 + 1)], WIDTHS)
    spec = two_stage_net(
        chans[:n1], chans[n1:],
        pad1=trial.suggest_categorical("pad1", [False, True]),
        pad_last=trial.suggest_categorical("pad_last", [False, True]),
        transition=trial.suggest_categorical("transition", [0, 4, 6, 8]),
        dropout=trial.suggest_float("dropout", 0.0, 0.1, step=0.025),
        bn=True,
        head="gap_conv",
    )
    return spec, sample_recipe(trial)


SPACE = register_space("mnist_2k", sample, about=ABOUT)
