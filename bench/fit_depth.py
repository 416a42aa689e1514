"""Which drawn nets fit a parameter budget, by depth, as drawn and once scaled (nas/fit.py).

The general space draws every width from one range, so its deep draws are the ones over a
small budget. This counts, for 1,000 draws of Optuna's random sampler (the startup trials
see the space this way, and TPE learns from them), how many fit as drawn and how many once
scaled down, with the mean factor. No training; a few seconds.

    python bench/fit_depth.py > bench/fit_depth.txt
"""

from __future__ import annotations

import collections

import optuna

from nas.config import SearchConfig
from nas.fit import fit_to_budgets
from nas.spaces import get_space
from nas.spec import Conv, SpecError, analyze

GROUPS = ((1, 4), (5, 6), (7, 12))  # 3x3 convs in the net


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = get_space("general")
    print(f"space general v{space.version}, 1,000 random draws per budget (sampler seed 0)")
    print(f"{'budget':>7} {'3x3 convs':>9} {'drawn':>6} {'fit as drawn':>13} "
          f"{'fit scaled':>11} {'mean factor':>12}")
    for budget in (2000, 4000, 8000):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        study.set_user_attr("max_params", budget)
        budgets = SearchConfig(study="x", max_params=budget).budgets()
        drawn, as_drawn, scaled = (collections.Counter() for _ in range(3))
        factor = collections.defaultdict(float)
        for _ in range(1000):
            trial = study.ask()
            spec, _ = space.sample(trial)
            study.tell(trial, 0.0)
            try:
                n = analyze(spec).n_params
            except SpecError:  # a map shrunk below a kernel: impossible at any width
                continue
            k = sum(isinstance(layer, Conv) and layer.k == 3 for layer in spec.layers)
            g = next(g for g in GROUPS if g[0] <= k <= g[1])
            drawn[g] += 1
            as_drawn[g] += n < budget
            fitted = fit_to_budgets(spec, budgets)
            if fitted:
                scaled[g] += 1
                factor[g] += fitted[1]
        for g in GROUPS:
            print(f"{budget:>7,} {f'{g[0]}-{g[1]}':>9} {drawn[g]:>6} "
                  f"{as_drawn[g]:>6} ({as_drawn[g] / drawn[g]:4.0%}) "
                  f"{scaled[g]:>4} ({scaled[g] / drawn[g]:4.0%}) "
                  f"{factor[g] / max(scaled[g], 1):>12.2f}")


if __name__ == "__main__":
    main()
