"""How many of their first trials two archived studies drew identically: an audit of sampler seeds.

Until 2026-12-05 worker k of a search drew with sampler seed --seed + k, so worker 1 of --seed N
and worker 0 of --seed N+1 shared one random stream, and their random start-up trials repeated.
For each pair given: how many of each study's first N trials (by number) have exactly the same
parameters as one of the other's first N. No training; reads the archived trials tables.

    python bench/seed_overlap.py results/cpu-*/ --pairs fashion-8k:fashion-8k-seed1 \\
        general-8k-scaled:general-8k-seed1 ... > bench/seed_overlap.txt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from nas.studyio import read_trials


def draws(folder: Path, first: int) -> list[str]:
    """The first trials' parameters, one canonical string each (unset parameters left out)."""
    df = read_trials(folder).sort_values("number").head(first)
    cols = sorted(c for c in df.columns if c.startswith("param_"))
    return ["|".join(f"{c}={v!r}" for c, v in zip(cols, row, strict=True)
                     if not pd.isna(v))
            for row in df[cols].itertuples(index=False)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("roots", nargs="+", help="folders holding archived studies (results/cpu-*)")
    p.add_argument("--pairs", nargs="+", required=True, help="STUDY_A:STUDY_B")
    p.add_argument("--first", type=int, default=12, help="trials compared from each (12)")
    args = p.parse_args()
    where = {d.name: d for root in map(Path, args.roots) for d in root.iterdir()
             if (d / "study.json").is_file()}
    print(f"{'study A':20s} {'seed':>4s} {'study B':20s} {'seed':>4s}  shared of first "
          f"{args.first}  winners' test means")
    for pair in args.pairs:
        a, b = pair.split(":")
        seeds, tests = [], []
        for s in (a, b):
            seeds.append(json.loads((where[s] / "study.json").read_text()).get("seed"))
            v = Path("results/verify") / f"{s}-winner-seeds0-1-2" / "verify.json"
            tests.append(f"{json.loads(v.read_text())['final_mean']:.2f}" if v.is_file() else "-")
        shared = len(set(draws(where[a], args.first)) & set(draws(where[b], args.first)))
        print(f"{a:20s} {seeds[0]!s:>4s} {b:20s} {seeds[1]!s:>4s}  {shared:>8d}"
              f"{'':12s}{tests[0]} / {tests[1]}")


if __name__ == "__main__":
    main()
