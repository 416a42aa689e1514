"""How strict the last rung's promotion could be: for each archived search, where the
full-length candidates stood at rung 1 when they were promoted.

A candidate goes on to its 15-epoch training when its rung-1 validation score is in the top
1/eta (eta 3) of all rung-1 scores so far (Optuna's SuccessiveHalvingPruner). A sampler that
improves makes that lenient: later candidates beat the early population. This prints, per study,
the share of full-length candidates that stood below the top 10, 15, 20 and 25% at rung 1 (each
against the trials numbered up to it), where the race's winner stood, and the worst standing of
the three best by full-length validation: what a stricter last rung would have saved, and what
it would have lost. Reads the trials table and study.json only (no training).

Then ``--eta 3,5`` replayed (nas.halving's rule: a candidate goes on from rung 1 when its score
is among the best n // 5 of the n rung-1 scores so far, its own included, or the best while
n < 5): the full-length runs it would have skipped, what they cost as a share of the search
phase's FCE (rungs at their default cost: 2 epochs x 0.25 and 3 x 0.5 of a 15-epoch run), and
whether the race's winner would still have trained in full. It replays one decision: the
compute saved would have gone to other candidates, which no replay can show. Last, the same
for rules that compare with only the last 10 or 20 rung-1 scores (no search has run them).

    python bench/promotion.py results/cpu-*/*/ > bench/promotion.txt   # seconds
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from nas.errors import NasError
from nas.studyio import read_trials

CUTS = (0.10, 0.15, 0.20, 0.25)


def standing(d: pd.DataFrame) -> pd.DataFrame:
    """The completed trials with ``pct``: the share of rung-1 scores so far above theirs."""
    d = d.assign(r1=d.rung_val_acc.where(d.rungs_run >= 2))
    full = d[d.state == "complete"].copy()
    full["pct"] = [(d[(d.number <= t.number)].r1 > t.r1).sum()
                   / max(d[(d.number <= t.number)].r1.notna().sum(), 1)
                   for t in full.itertuples()]
    return full


def strict_replay(d: pd.DataFrame, full: pd.DataFrame, eta: int = 5,
                  window: int | None = None) -> pd.Series:
    """Per full-length candidate: would it still go on from rung 1 with 1 in ``eta``? Against
    all rung-1 scores so far, or only the last ``window`` of them (by trial number), which a
    sampler that keeps improving cannot outgrow."""
    r1 = d.rung_val_acc.where(d.rungs_run >= 2)
    kept = []
    for t in full.itertuples():
        so_far = r1[(d.number <= t.number)].dropna()
        so_far = (so_far if window is None else so_far.tail(window)).sort_values(ascending=False)
        kept.append(t.r1 >= so_far.iloc[max(len(so_far) // eta, 1) - 1])
    return pd.Series(kept, index=full.index)


WINDOWED = ((3, 20), (5, 20), (3, 10))  # (eta, window): rules no search has run yet


def search_fce(d: pd.DataFrame) -> float:
    """The search phase's compute in full-candidate equivalents, at the default rungs."""
    trained = d[d.rungs_run >= 1]
    return (len(trained) * 2 * 0.25 + (trained.rungs_run >= 2).sum() * 3 * 0.5) / 15 \
        + (d.state == "complete").sum()


def verdict(kept: pd.Series, full: pd.DataFrame, win: int | None, fce: float
            ) -> tuple[int, float, bool, bool]:
    """A replayed rule's outcome: full-length runs cut, their share of the search phase's
    FCE, whether the race's winner still trained in full, and the three best by validation."""
    best3 = full.sort_values("val_acc").tail(3).index
    return (int((~kept).sum()), (~kept).sum() / fce,
            bool((full.number == win).any() and kept[full.number == win].all()),
            bool(kept[best3].all()))


def main(dirs: list[str]) -> None:
    print(f"$ python bench/promotion.py DIR...  # {len(dirs)} folders; searches with rungs below")
    print("study                  full  below top 10/15/20/25% at rung 1   winner   worst of top 3"
          "   --eta 3,5: full cut, FCE saved, winner kept")
    rows, windowed = [], {}
    for folder in map(Path, dirs):
        try:
            d = read_trials(folder)
        except NasError:
            continue  # a folder with no trials table
        if "rung_val_acc" not in d or (d.state == "complete").sum() < 5:
            continue  # a pruner other than the rungs, or too few full-length candidates
        full = standing(d)
        win = (json.loads((folder / "study.json").read_text()).get("winner") or {}).get("trial")
        wp = full.loc[full.number == win, "pct"]
        top3 = full.sort_values("val_acc").tail(3).pct.max()
        shares = [(full.pct > c).mean() for c in CUTS]
        fce = search_fce(d)
        cut, saved, won, _ = verdict(strict_replay(d, full), full, win, fce)
        rows.append((shares, wp.iloc[0] if len(wp) else float("nan"), top3, cut, saved, won))
        for eta, window in WINDOWED:
            windowed.setdefault((eta, window), []).append(
                verdict(strict_replay(d, full, eta, window), full, win, fce))
        print(f"{folder.name:22s} {len(full):4d}  "
              + "  ".join(f"{100 * s:4.0f}%" for s in shares)
              + f"        {100 * rows[-1][1]:4.0f}%   {100 * top3:4.0f}%"
              + f"          {cut:4d}  {100 * saved:5.1f}%   {'yes' if won else 'NO'}")
    if rows:
        mean = [sum(r[0][i] for r in rows) / len(rows) for i in range(len(CUTS))]
        print(f"{'mean of ' + str(len(rows)):22s}       "
              + "  ".join(f"{100 * s:4.0f}%" for s in mean)
              + f"        worst winner {100 * max(r[1] for r in rows):.0f}%, "
              f"worst top-3 {100 * max(r[2] for r in rows):.0f}%")
        print(f"--eta 3,5 replayed: {sum(r[3] for r in rows)} full-length runs cut in "
              f"{len(rows)} searches, {100 * sum(r[4] for r in rows) / len(rows):.1f}% of a "
              f"search phase's FCE on average; the race's winner kept in "
              f"{sum(r[5] for r in rows)} of {len(rows)}")
    for (eta, window), w in windowed.items():
        print(f"1 in {eta} of the last {window} rung-1 scores, replayed: {sum(r[0] for r in w)} "
              f"full-length runs cut, {100 * sum(r[1] for r in w) / len(w):.1f}% of a search "
              f"phase's FCE on average; the race's winner kept in {sum(r[2] for r in w)} of "
              f"{len(w)}, all three best full-length candidates in {sum(r[3] for r in w)}")


if __name__ == "__main__":
    main(sys.argv[1:])
