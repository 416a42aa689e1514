"""Would separable convs help? Search winners against their separable twins, on validation.

Before the separable space (search_spaces/separable.py) costs a two-hour search per budget,
this asks a cheaper question. Take a default search's winner, as the race named it, and turn
every 3x3 conv but the first into a depthwise 3x3 followed by a 1x1 conv of m times the width
(``twin``), with the largest m that keeps it under the study's budget. Then train the twin
with the winner's own recipe, on the race's two fresh seeds, and judge it on the search's
validation split. The winner's own race scores, from study.json, are the comparison. The
test set is never evaluated.

    python bench/separable_pilot.py general-2k:results/cpu-2026-11-29 \\
        general-4k-scaled:results/cpu-2026-11-29 general-8k-scaled:results/cpu-2026-11-29 \\
        fashion-8k:results/cpu-2026-11-29 > bench/separable_pilot_cpu.txt

Two trainings at a time, one thread each (as the race runs them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import statistics
from concurrent.futures import ProcessPoolExecutor

from nas.config import SearchConfig
from nas.race import _run, race_seeds
from nas.spec import ArchSpec, Conv, DWConv, analyze, describe
from nas.studyio import get_trial, load_study, study_dir


def twin(spec: ArchSpec, m: float) -> ArchSpec:
    """Every 3x3 conv but the first as depthwise 3x3 + 1x1 conv, the 1x1 ``m`` times as wide."""
    layers, seen = [], False
    for layer in spec.layers:
        if isinstance(layer, Conv) and layer.k == 3:
            if seen:
                layers += [DWConv(3, layer.pad),
                           Conv(max(4, round(layer.out * m)), 1, 0, layer.bias)]
                continue
            seen = True
        layers.append(layer)
    return dataclasses.replace(spec, layers=tuple(layers))


def widest_twin(spec: ArchSpec, budget: int) -> tuple[ArchSpec, float]:
    """The twin with the largest m (to 1/256) under ``budget`` parameters."""
    lo, hi = 0.25, 16.0
    for _ in range(14):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if analyze(twin(spec, mid)).n_params < budget else (lo, mid)
    return twin(spec, lo), lo


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("studies", nargs="+", help="STUDY:RESULTS_DIR, an archived default search")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    jobs, rows = [], []
    for item in args.studies:
        name, results = item.split(":", 1)
        meta = json.loads((study_dir(results, name) / "study.json").read_text())
        t = get_trial(load_study(results, name), "winner", study_dir(results, name) / "study.json")
        cfg = SearchConfig(study=name, dataset=meta["dataset"], val_size=meta["val_size"],
                           data_dir=None, device="cpu")
        spec = ArchSpec.from_dict(t.user_attrs["spec"])
        sep, m = widest_twin(spec, meta["max_params"])
        a, b = analyze(spec), analyze(sep)
        rows.append({"study": name, "budget": meta["max_params"], "trial": t.number,
                     "winner": describe(spec), "params": a.n_params, "macs": a.macs,
                     "race": meta["winner"]["race_vals"], "twin": describe(sep), "m": m,
                     "twin_params": b.n_params, "twin_macs": b.macs})
        for seed in race_seeds(meta["race_seeds"]):
            jobs.append((len(rows) - 1, seed, sep.to_dict(), t.user_attrs["train_config"], cfg))
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
        futures = [(i, seed, pool.submit(_run, spec, tcfg, seed, cfg, 1, rows[i]["trial"]))
                   for i, seed, spec, tcfg, cfg in jobs]
        results = [(i, seed, f.result()) for i, seed, f in futures]
    for r in rows:
        print(f"{r['study']} (budget {r['budget']:,}), race winner trial {r['trial']}:")
        print(f"  winner {r['params']:,} params {r['macs'] / 1e6:.2f}M MACs  {r['winner']}")
        print(f"  twin   {r['twin_params']:,} params {r['twin_macs'] / 1e6:.2f}M MACs  "
              f"{r['twin']}  (1x1 widths x{r['m']:.2f})")
    print()
    print(f"{'study':<20} {'seed':>7} {'winner val':>11} {'twin val':>9} {'twin min':>9}")
    for i, r in enumerate(rows):
        mine = [(s, x) for j, s, x in results if j == i]
        for (seed, x), v in zip(mine, r["race"], strict=False):
            print(f"{r['study']:<20} {seed:>7} {v:>10.2f}% {x['val_acc']:>8.2f}% "
                  f"{x['seconds'] / 60:>8.1f}")
        twin_vals = [x["val_acc"] for _, x in mine]
        print(f"{r['study']:<20} {'mean':>7} {statistics.fmean(r['race']):>10.2f}% "
              f"{statistics.fmean(twin_vals):>8.2f}%  difference "
              f"{statistics.fmean(twin_vals) - statistics.fmean(r['race']):+.2f}")


if __name__ == "__main__":
    main()
