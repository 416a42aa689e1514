"""How archived searches ended their search phase, from their journals; no training.

Per study: the trials the deadline cut (`out_of_time`: ended FAIL part-way through a rung or
the full run) and the worker-minutes they spent in the stage that was cut, which a search
throws away; then, over the full-length candidates, how their real full training time compares
with `nas.search.full_run_s`'s estimate from their last rung (the check that now keeps such
runs from starting); and the trial number of the best full-length candidate.

    python bench/search_phase_end.py results/cpu-2026-11-25/general-8k \
        results/cpu-2026-11-29/general-8k-scaled results/cpu-2026-12-01/general-8k-seed1 \
        results/cpu-2026-11-29/general-4k-scaled results/cpu-2026-11-29/general-2k \
        results/cpu-2026-12-02/separable-4k results/cpu-2026-12-02/separable-2k \
        results/cpu-2026-12-02/separable-8k results/cpu-2026-11-29/fashion-8k \
        results/cpu-2026-11-29/fashion-25k results/cpu-2026-12-02/fashion-8k-sep \
        results/cpu-2026-11-28/macs-500k > bench/search_phase_end.txt
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from nas.search import full_run_s
from nas.studyio import completed, load_study


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("studies", nargs="+", help="archived study folders (results/cpu-DATE/NAME)")
    args = p.parse_args()
    ratios_all = []
    print("study               cut  stages                 cut-stage worker-min  "
          "full runs  real/estimate (min, median, max)  best full-length trial")
    for folder in map(Path, args.studies):
        study = load_study(folder.parent, folder.name)
        cut = [t for t in study.trials if t.user_attrs.get("out_of_time")]
        wasted = 0.0
        for t in cut:
            if t.datetime_start and t.datetime_complete:
                spent = (t.datetime_complete - t.datetime_start).total_seconds()
                wasted += max(0.0, spent - sum(r["train_s"] for r in t.user_attrs.get("rungs", [])))
        full = [t for t in completed(study) if t.user_attrs.get("rungs")
                and "full_train_s" in t.user_attrs]
        # a rung trains on its fraction of the training images (study.json's rungs)
        fraction = json.loads((folder / "study.json").read_text())["rungs"][-1][1]
        n_train = round(full[0].user_attrs["rungs"][-1]["images"] / fraction) if full else 0
        ratios = [t.user_attrs["full_train_s"]
                  / full_run_s(t.user_attrs["rungs"][-1], len(t.user_attrs["history"]), n_train)
                  for t in full]
        ratios_all += ratios
        best = max(completed(study), key=lambda t: t.values[0]).number
        stages = ", ".join(t.user_attrs["out_of_time"] for t in cut) or "-"
        spread = (f"{min(ratios):.2f}, {statistics.median(ratios):.2f}, {max(ratios):.2f}"
                  if ratios else "-")
        print(f"{folder.name:18s} {len(cut):4d}  {stages:22s} {wasted / 60:20.1f}  "
              f"{len(full):9d}  {spread:32s}  {best:21d}")
    if ratios_all:
        print(f"all: {len(ratios_all)} full runs, real/estimate {min(ratios_all):.2f} to "
              f"{max(ratios_all):.2f}, median {statistics.median(ratios_all):.2f}")


if __name__ == "__main__":
    main()
