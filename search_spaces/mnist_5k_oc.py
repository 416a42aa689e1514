"""mnist_5k_oc: mnist_8k_oc's shape and fixed recipe at 3.5-5k parameters (run with
--max-params 5000).

The frontier's best below 5k was ref4k's net (ref7918 narrowed, 3,866 params) trained with
found7k2's recipe: 99.38 +- 0.04 over 3 seeds, 2 of 3 seeds at 99.4. This space spends the
1,100 parameters left under 5,000 on the same shape's widths, with the recipe searched as in
mnist_8k_oc.

Parameters: as mnist_8k_oc.
"""

from __future__ import annotations

from nas.spaces import register_space
from search_spaces.mnist_8k_oc import onecycle_recipe
from search_spaces.mnist_8k_ref import ref_shaped

ABOUT = "mnist_8k_oc's shape and recipe at 3.5-5k params (use --max-params 5000)"


def sample(trial):
    spec = ref_shaped(
        stem=trial.suggest_categorical("stem_channels", [6, 7, 8]),
        mid=trial.suggest_categorical("mid_channels", [10, 12]),
        late=trial.suggest_categorical("late_channels", [8, 10]),
        squeeze=trial.suggest_categorical("squeeze", [10, 12, 16]),
        expand=trial.suggest_categorical("expand", [10, 12, 16]),
    )
    return spec, onecycle_recipe(trial)


SPACE = register_space("mnist_5k_oc", sample, about=ABOUT)
