"""mnist_5k_oc: mnist_8k_oc's shape and fixed recipe at 3.5-5k parameters (run with
--max-params 5000). It found best5k (docs/experiments.md).

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
