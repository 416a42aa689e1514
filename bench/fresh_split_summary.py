"""Which judge picks the better entrant: the race on the search's split, or on fresh folds?

Reads the output of ``bench/val_vs_test.py --split fresh`` for several studies (one block per
study) and puts, for each race, the test mean of the entrant each judge names beside the best
test mean among its entrants. The test means are those of the fresh-fold runs themselves
(two seeds each, 50,000 training images); they judge the judges and choose nothing.

    python bench/fresh_split_summary.py bench/fresh_split_cpu.txt
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from val_vs_test import spearman  # noqa: E402

# a run's line: trial, seed, fold, race val, val, test (means are taken here, not read at
# two decimals from the mean lines, where 99.285 and 99.28 would print alike)
RUN = re.compile(r"^\s*(\d+)\s+\d+\s+\d+\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)%")
HEAD = re.compile(r"^(\S+): the race's \d+ entrants.*winner trial (\d+)$")
NAMED = re.compile(r"^a race on fresh folds names trial (\d+)")


def parse(text: str) -> list[dict]:
    """One dict per study: name, the race's winner, the fresh-fold pick, and per entrant
    (race mean on fold 0, fresh-fold mean, test mean)."""
    studies = []
    for line in text.splitlines():
        if m := HEAD.match(line):
            studies.append({"study": m[1], "race": int(m[2]), "runs": {}})
        elif m := RUN.match(line):
            run = tuple(map(float, m.group(2, 3, 4)))
            studies[-1]["runs"].setdefault(int(m[1]), []).append(run)
        elif m := NAMED.match(line):
            studies[-1]["fresh"] = int(m[1])
    for s in studies:
        s["entrants"] = {t: tuple(statistics.fmean(col) for col in zip(*runs, strict=True))
                         for t, runs in s["runs"].items()}
    return [s for s in studies if "fresh" in s]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    args = p.parse_args()
    studies = [s for f in args.files for s in parse(f.read_text())]
    print(f"{'study':<20} {'race':>5} {'test':>7} {'fresh':>6} {'test':>7} {'best':>7} "
          f"{'rho race':>9} {'rho fresh':>10}")
    picked = {"race": [], "fresh": [], "best": []}
    rhos = {"race": [], "fresh": []}
    for s in studies:
        e = s["entrants"]
        test = {t: v[2] for t, v in e.items()}
        best = max(test.values())
        r_race = spearman([v[0] for v in e.values()], list(test.values()))
        r_fresh = spearman([v[1] for v in e.values()], list(test.values()))
        for k, v in (("race", test[s["race"]]), ("fresh", test[s["fresh"]]), ("best", best)):
            picked[k].append(v)
        rhos["race"].append(r_race)
        rhos["fresh"].append(r_fresh)
        print(f"{s['study']:<20} {s['race']:>5} {test[s['race']]:>6.2f}% {s['fresh']:>6} "
              f"{test[s['fresh']]:>6.2f}% {best:>6.2f}% {r_race:>9.2f} {r_fresh:>10.2f}")
    n = len(studies)
    print(f"over {n} races, the test mean of the entrant named: race on the search's split "
          f"{statistics.fmean(picked['race']):.3f}%, race on fresh folds "
          f"{statistics.fmean(picked['fresh']):.3f}%, the best entrant "
          f"{statistics.fmean(picked['best']):.3f}%")
    hits = {k: sum(a == b for a, b in zip(picked[k], picked["best"], strict=True))
            for k in ("race", "fresh")}
    print(f"picks of the best entrant by test: race {hits['race']}/{n}, fresh "
          f"{hits['fresh']}/{n}; mean within-race Spearman with the test means: race "
          f"{statistics.fmean(x for x in rhos['race'] if x == x):.2f}, fresh "
          f"{statistics.fmean(x for x in rhos['fresh'] if x == x):.2f}")


if __name__ == "__main__":
    main()
