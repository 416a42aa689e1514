"""What a finished search trained, by depth: from archived studies' trials tables, no training.

For each study: per number of 3x3 convs (full or depthwise), how many candidates trained (rung
0 or more), their median rung-0 validation score, how many reached 15 epochs and their median
final validation score; then the Spearman rank correlation between rung 0's score and the final
one over the full-length candidates (all of which rung 0 had passed, so it understates the
rung's).

    python bench/study_depth.py results/cpu-2026-11-29/general-2k \
        results/cpu-2026-11-29/general-4k-scaled results/cpu-2026-11-29/fashion-8k \
        results/cpu-2026-11-29/fashion-25k results/cpu-2026-11-29/general-8k-scaled \
        results/cpu-2026-11-25/general-8k results/cpu-2026-12-01/general-8k-seed1 \
        results/cpu-2026-12-02/separable-4k results/cpu-2026-12-02/fashion-8k-sep \
        results/cpu-2026-12-02/separable-2k results/cpu-2026-12-02/separable-8k \
        results/cpu-2026-12-02/auto-4k-seed1 > bench/study_depth.txt
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from nas.studyio import read_trials


def depth_table(trials: pd.DataFrame) -> tuple[pd.DataFrame, float, int]:
    """(rows by 3x3 convs, Spearman rho of rung 0 vs final, full-length count)."""
    t = trials[trials.arch.notna()].copy()
    # C: a 3x3 conv; D: a depthwise 3x3 (of a separable conv); T: a 1x1 transition
    t["convs"] = t.arch.str.count(r"\bC\d|\bDp?\b")
    t["rung0"] = t.rung_val_acc.astype(str).map(
        # pandas 3 keeps missing values missing through astype(str): a trial that failed
        # before its first rung has none
        lambda s: float(m.group()) if isinstance(s, str) and (m := re.search(r"[\d.]+", s))
        else float("nan"))
    trained = t[t.rung0.notna() | (t.epochs_run == 15)]
    full = trained[(trained.state == "complete") & (trained.epochs_run == 15)]
    rows = pd.DataFrame({
        "trained": trained.groupby("convs").size(),
        "rung0_median": trained.groupby("convs").rung0.median(),
        "full": full.groupby("convs").size(),
        "final_median": full.groupby("convs").val_acc.median(),
    }).fillna({"full": 0}).astype({"full": int})
    both = full[full.rung0.notna()]
    rho = both.rung0.rank().corr(both.val_acc.rank())  # Spearman, without scipy
    return rows, rho, len(both)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("studies", nargs="+", type=Path,
                   help="study folders holding trials.parquet or trials.csv")
    args = p.parse_args()
    for d in args.studies:
        rows, rho, n = depth_table(read_trials(d))
        print(f"{d}")
        print(rows.to_string(float_format=lambda v: f"{v:.2f}"))
        print(f"Spearman rho, rung 0 vs final validation, {n} full-length candidates: "
              f"{rho:.2f}\n")


if __name__ == "__main__":
    main()
