"""How widely each finished search spread its full-length candidates over training recipes.

From archived studies' trials tables and their winners' `nas verify --seeds 0,1,2` runs, no
training. A recipe family is (optimizer, schedule, head). For each study: how many candidates
reached 15 epochs, the share of the most common family among them, how many families there were,
and each family's count, median and best final validation score; then the winner's test mean.
Last, per dataset and budget with three or more studies, the Spearman rank correlation between
the modal share and the test mean: does a search that settles on one family early end worse?

    python bench/recipe_spread.py results/cpu-*/*/ > bench/recipe_spread.txt

Studies without a verify run of their winner (results/verify/STUDY-winner-seeds0-1-2/) or
without full-length candidates are left out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from nas.studyio import read_trials

FAMILY = ["param_optimizer", "param_schedule", "param_head"]


def spread(trials: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """(count / median / best final validation per family, most common first; full count)."""
    full = trials[(trials.state == "complete") & (trials.epochs_run == 15)]
    full = full[[c for c in FAMILY if c in full] + ["val_acc"]].dropna(subset=["val_acc"])
    if full.empty or not all(c in full for c in FAMILY):
        return pd.DataFrame(), 0
    fam = full[FAMILY].astype(str).agg("/".join, axis=1)
    table = full.groupby(fam).val_acc.agg(["count", "median", "max"])
    return table.sort_values(["count", "max"], ascending=False), len(full)


def group_of(study: dict) -> str:
    """What a row is compared within: the dataset and the parameter budget."""
    return f"{study.get('dataset', 'mnist')} <{study.get('max_params')}"


def spearman(a: list[float], b: list[float]) -> float:
    return pd.Series(a).rank().corr(pd.Series(b).rank())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("studies", nargs="+", help="archived study folders (results/cpu-DATE/STUDY)")
    p.add_argument("--verify-dir", default="results/verify")
    args = p.parse_args()
    rows = []
    for folder in map(Path, args.studies):
        name = folder.name.rstrip("/")
        verify = Path(args.verify_dir) / f"{name}-winner-seeds0-1-2" / "verify.json"
        if not verify.is_file() or not (folder / "study.json").is_file():
            continue
        table, n_full = spread(read_trials(folder))
        if not n_full:
            continue
        study = json.loads((folder / "study.json").read_text())
        test = json.loads(verify.read_text())["final_mean"]
        share = table["count"].iloc[0] / n_full
        rows.append({"study": name, "group": group_of(study), "full": n_full,
                     "modal": table.index[0], "modal_share": share, "families": len(table),
                     "test": test})
        print(f"{folder}: {n_full} full-length candidates, {len(table)} recipe families, "
              f"the most common {share:.0%}; winner's test mean {test:.2f}%")
        print(table.rename(columns={"median": "val_median", "max": "val_best"})
              .round(2).to_string())
        print()
    df = pd.DataFrame(rows)
    print(df.sort_values(["group", "test"]).round(3).to_string(index=False))
    print()
    for group, g in df.groupby("group"):
        if len(g) >= 3:
            rho = spearman(g.modal_share.tolist(), g.test.tolist())
            print(f"{group}: {len(g)} studies, Spearman (modal share, winner's test mean) "
                  f"{rho:+.2f}")


if __name__ == "__main__":
    main()
