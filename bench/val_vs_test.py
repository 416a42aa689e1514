"""Does validation rank a race's entrants as the test set does? The race's own runs, re-run.

The seed race names its winner by mean validation accuracy over fresh seeds, and the test set
is not touched until it has. At 8k the race's validation means did not order the winners'
test means across searches (`bench/anytime.txt`). This asks the same within one search, after
its winner is fixed: each race entrant is trained again on the race's seeds, on the search's
split (the validation images held out), one thread each as the race ran, so each run repeats
a race run; this time both its final validation and its final test accuracy are read. The
test set judges validation here; it chooses nothing.

With ``--split fresh`` the race's i-th seed holds out validation fold ``race_fold(i)`` instead:
10,000 training images disjoint from the search's split, which chose the entrants, so their
luck on those images does not follow them into the judging. The script then says which entrant
that race would have named, by the race's own rule (best mean validation, fewer parameters on
a tie), computed from validation alone, and what each judge's order has to do with the test
set's.

    python bench/val_vs_test.py auto-8k-seed4:results/cpu-2026-12-05 > bench/val_vs_test_cpu.txt
    python bench/val_vs_test.py --split fresh auto-8k-seed4:results/cpu-2026-12-05 \
        >> bench/fresh_split_cpu.txt
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import pandas as pd

from nas.race import race_fold
from nas.studyio import get_trial, load_study, study_dir


def run(spec: dict, tcfg: dict, seed: int, dataset: str, val_size: int, fold: int) -> dict:
    """One training with validation fold ``fold`` held out; final validation and test accuracy,
    minutes."""
    import torch

    from nas.config import TrainConfig
    from nas.datasets import load_data
    from nas.runs import exit_with_parent
    from nas.spec import ArchSpec
    from nas.train import train

    exit_with_parent()  # a stopped script leaves no training behind
    torch.set_num_threads(1)
    data = load_data(dataset, None, "cpu", val_size, fold)
    t0 = time.perf_counter()
    res = train(ArchSpec.from_dict(spec), TrainConfig.from_dict(tcfg), data, seed=seed,
                progress=False)
    last = res.history[-1]
    return {"val": last["val_acc"], "test": last["test_acc"],
            "minutes": (time.perf_counter() - t0) / 60}


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rho: Pearson's r of the ranks, ties sharing their mean rank (as
    bench/rung_correlation.py); two entrants level on validation are level here too."""
    def ranks(x: list[float]) -> pd.Series:  # rounded: equal image counts, not float noise
        return pd.Series(x).round(6).rank()

    return ranks(a).corr(ranks(b)) if len(a) > 2 else math.nan


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", help="STUDY:RESULTS_DIR, a study whose race has named a winner")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--split", choices=["search", "fresh"], default="search",
                   help="search: the search's split, repeating the race's runs; fresh: the "
                   "race's i-th seed holds out fold race_fold(i), images that chose nothing")
    args = p.parse_args()
    name, results = args.study.split(":", 1)
    sj = study_dir(results, name) / "study.json"
    meta = json.loads(sj.read_text())
    study = load_study(results, name)
    race = json.loads((study_dir(results, name) / "race.json").read_text())
    seeds = sorted({r["seed"] for r in race["runs"].values()})  # runs: {"trial:seed": run}
    jobs = []
    if args.split == "fresh":  # how many folds the training images hold, as the race counts
        from nas.datasets import load_data

        d = load_data(meta["dataset"], None, "cpu", meta["val_size"])
        n_folds = (len(d.train.y) + len(d.val.y)) // meta["val_size"]
    for entry in meta["race"]:
        t = get_trial(study, entry["trial"], sj)
        tcfg = {**t.user_attrs["train_config"], "bf16": meta.get("bf16")}
        for i, (seed, race_val) in enumerate(zip(seeds, entry["race_vals"], strict=True)):
            fold = race_fold(i, n_folds) if args.split == "fresh" else 0
            jobs.append((entry["trial"], seed, fold, race_val, t.user_attrs["spec"], tcfg))
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
        futures = [pool.submit(run, spec, tcfg, seed, meta["dataset"], meta["val_size"], fold)
                   for _, seed, fold, _, spec, tcfg in jobs]
        out = [f.result() for f in futures]
    where = ("the search's split" if args.split == "search" else
             "validation folds that chose nothing (fold k: the k-th block of the split's "
             "permutation; fold 0 is the search's split)")
    print(f"{name}: the race's {len(meta['race'])} entrants on seeds "
          f"{', '.join(map(str, seeds))}, trained again with {meta['val_size']:,} validation "
          f"images held out, on {where}; winner trial {meta['winner']['trial']}")
    print(f"{'trial':>6} {'seed':>7} {'fold':>4} {'race val':>9} {'val':>7} {'test':>7} "
          f"{'test-val':>9} {'min':>5}")
    by, race_means, params = {}, {}, {}
    for entry in meta["race"]:
        race_means[entry["trial"]] = statistics.fmean(entry["race_vals"])
        params[entry["trial"]] = entry["n_params"]
    for (trial, seed, fold, race_val, _, _), r in zip(jobs, out, strict=True):
        by.setdefault(trial, []).append(r)
        print(f"{trial:>6} {seed:>7} {fold:>4} {race_val:>8.2f}% {r['val']:>6.2f}% "
              f"{r['test']:>6.2f}% {r['test'] - r['val']:>+9.2f} {r['minutes']:>5.1f}")
    means = {t: (statistics.fmean(r["val"] for r in rs), statistics.fmean(r["test"] for r in rs))
             for t, rs in by.items()}
    for t, (v, te) in means.items():
        print(f"{t:>6} {'mean':>7} {'':>4} {race_means[t]:>8.2f}% {v:>6.2f}% {te:>6.2f}% "
              f"{te - v:>+9.2f}")
    vals, tests = zip(*means.values(), strict=True)
    print(f"validation means order the test means with Spearman "
          f"{spearman(list(vals), list(tests)):.2f} over {len(means)} entrants")
    if args.split == "fresh":
        print(f"the race's own means (fold 0) order them with Spearman "
              f"{spearman([race_means[t] for t in means], list(tests)):.2f}")
        # the race's rule (nas.race): best mean validation, then fewer parameters; no test
        named = max(means, key=lambda t: (means[t][0], -params[t]))
        print(f"a race on fresh folds names trial {named} (the race named trial "
              f"{meta['winner']['trial']}); test means here: "
              + ", ".join(f"{t} {te:.2f}%" for t, (_, te) in means.items()))


if __name__ == "__main__":
    main()
