"""Scale a net's widths down until it fits the budgets, keeping its shape.

Why: a space draws each width from one range, so the deeper a drawn net, the likelier it is
over the budget. Under 4,000 parameters the general space's nets of 7 to 9 convs were
rejected 32 times in 38 draws, and TPE learned that depth does not fit. The designs that do
best at small budgets are the deep, narrow ones (ref3762 has nine convs; docs/experiments.md).
Scaled to fit, a drawn shape is trained at the widest widths the budget allows instead of being
thrown away, so depth is judged on its accuracy, not on its parameter count.

Every conv and linear layer but the last (the logits) is scaled by one factor f: ``round(out
* f)``, never below ``min(out, MIN_WIDTH)``. The largest f (to 1/2**16) that passes every
budget is found by bisection on ``analyze``, about 0.1 ms a step. A net that is over budget
even at the floor does not fit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from nas.spec import Analysis, ArchSpec, Conv, Linear, analyze

MIN_WIDTH = 4  # a scaled layer keeps at least this many channels (or its own, if fewer)
STEPS = 16  # bisection steps on the factor

Budgets = dict[str, tuple[float, Callable[[Analysis], float]]]  # SearchConfig.budgets()


def over_budget(info: Analysis, budgets: Budgets) -> list[str]:
    """The budgets ``info`` breaks (limits are strict: a value must be < its limit)."""
    return [name for name, (limit, measure) in budgets.items() if measure(info) >= limit]


def scale_widths(spec: ArchSpec, f: float) -> ArchSpec:
    """``spec`` with every conv and linear but the last (the logits) ``f`` times as wide."""
    weighted = [i for i, layer in enumerate(spec.layers) if isinstance(layer, Conv | Linear)]
    last = weighted[-1] if weighted else -1
    layers = tuple(
        dataclasses.replace(layer, out=max(min(layer.out, MIN_WIDTH), round(layer.out * f)))
        if i in weighted and i != last else layer
        for i, layer in enumerate(spec.layers))
    return dataclasses.replace(spec, layers=layers)


def fit_to_budgets(spec: ArchSpec, budgets: Budgets) -> tuple[ArchSpec, float] | None:
    """(the widest scaled ``spec`` that fits, its factor); ``spec`` itself with 1.0 when it
    fits already; None when not even the narrowest does."""
    if not over_budget(analyze(spec), budgets):
        return spec, 1.0
    if over_budget(analyze(scale_widths(spec, 0.0)), budgets):
        return None
    lo, hi = 0.0, 1.0  # lo fits, hi does not
    for _ in range(STEPS):
        mid = (lo + hi) / 2
        if over_budget(analyze(scale_widths(spec, mid)), budgets):
            hi = mid
        else:
            lo = mid
    return scale_widths(spec, lo), lo
