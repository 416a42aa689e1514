"""Successive halving over the cheap rungs, with its own eta at each rung (``--eta 3,5``).

Optuna's ``SuccessiveHalvingPruner`` promotes one in ``reduction_factor`` from every rung. Our
archived searches say the last cheap rung could be stricter than the first
(``bench/promotion.txt``: every race winner of 20 searches stood in the top 15% of its rung-1
scores, while one in three goes on to the 15-epoch training, the run that costs most). So
``--eta`` takes one value per rung, and a study whose values differ uses ``RungPruner``.

The rule is Optuna's asynchronous one (``_is_trial_promotable_to_next_rung``): a candidate goes
on from rung k when its score is among the best ``n // eta_k`` of the n scores that rung has
seen so far, its own included, or is the best of them while n < eta_k. Rung k reports at step
``eta_0 * ... * eta_(k-1)`` (``rung_steps``), which is ``eta ** k`` for one eta: the steps
Optuna's pruner reads, so a study keeps its steps whichever pruner runs it. With one eta the
two pruners decide alike (tests/test_search.py compares them), and the search keeps Optuna's.
"""

from __future__ import annotations

import math

import optuna


def rung_steps(etas: tuple) -> tuple:
    """The step rung k reports at: the product of the etas before it (1, 3, 15 for 3,5,...)."""
    steps, step = [], 1
    for eta in etas:
        steps.append(step)
        step *= eta
    return tuple(steps)


class RungPruner(optuna.pruners.BasePruner):
    """Asynchronous successive halving with ``etas[k]`` at rung k (see the module's note)."""

    def __init__(self, etas: tuple):
        if not etas or any(int(e) != e or e < 2 for e in etas):
            raise ValueError(f"each eta must be an integer >= 2, got {etas}")
        self.etas = tuple(int(e) for e in etas)
        self._rung = {s: k for k, s in enumerate(rung_steps(self.etas))}

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step not in self._rung:
            return False  # not a rung's report (a full-length epoch, say): nothing to judge
        value = trial.intermediate_values[step]
        if math.isnan(value):
            return True
        scores = [value]
        for t in study.get_trials(deepcopy=False):
            v = t.intermediate_values.get(step)
            if t.number != trial.number and v is not None and not math.isnan(v):
                scores.append(v)
        keep = max(len(scores) // self.etas[self._rung[step]], 1)
        scores.sort(reverse=study.direction == optuna.study.StudyDirection.MAXIMIZE)
        bar = scores[keep - 1]
        if study.direction == optuna.study.StudyDirection.MAXIMIZE:
            return value < bar
        return value > bar
