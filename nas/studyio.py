"""Where a study's files live and how to read a study back: storage, trials table, trial specs."""

from __future__ import annotations

import gzip
import json
import math
import os
import statistics
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.storages.journal import BaseJournalBackend
from optuna.trial import FrozenTrial, TrialState

from nas.errors import NasError

if TYPE_CHECKING:  # pandas costs a third of a second to import, and a search never needs it
    import pandas as pd


def study_dir(results_dir: str | Path, study: str) -> Path:
    return Path(results_dir) / study


def weights_path(out_dir: Path, number: int) -> Path:
    return out_dir / "trials" / f"{number:04d}.pt"


ARCHIVED_JOURNAL = "journal.log.gz"


def open_storage(url: str | None, out_dir: Path):
    """An RDB URL (sqlite:///..., postgresql://...) or, by default, the study's journal file:
    ``journal.log``, or the read-only ``journal.log.gz`` of an archived study (nas archive)."""
    if url is None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        if not (out_dir / "journal.log").exists() and (out_dir / ARCHIVED_JOURNAL).is_file():
            return JournalStorage(GzipJournalBackend(out_dir / ARCHIVED_JOURNAL))
        out_dir.mkdir(parents=True, exist_ok=True)
        check_journal(out_dir / "journal.log")
        return JournalStorage(JournalFileBackend(str(out_dir / "journal.log")))
    try:
        # Heartbeats let Optuna fail the trials of a worker that died, on any machine: a
        # RUNNING trial whose heartbeat is older than the grace period is marked FAIL by the
        # next process that starts a trial. NAS_HEARTBEAT_S shortens it (tests).
        beat = int(os.environ.get("NAS_HEARTBEAT_S", "60"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, heartbeat_interval=beat,
                                              grace_period=3 * beat)
    except Exception as e:  # SQLAlchemy raises ArgumentError, OperationalError, ImportError...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NasError(f"bad storage URL {url!r}: {msg}") from None


class GzipJournalBackend(BaseJournalBackend):
    """An archived study's journal, gzipped (about 20x smaller): read-only.

    Its records are read once; adding a trial raises a NasError that says how to resume.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            with gzip.open(self.path, "rt", encoding="utf-8") as f:
                self.logs = [json.loads(line) for line in f if line.strip()]
        except (OSError, EOFError, ValueError) as e:
            raise NasError(f"{self.path} is not a readable gzipped journal: {e}") from None

    def read_logs(self, log_number_from: int):
        return self.logs[log_number_from:]

    def append_logs(self, logs: list[dict]) -> None:
        raise NasError(f"{self.path.parent} is an archived study (read-only); to add trials, "
                       f"gunzip {self.path} first")


def journal_records(path: Path) -> tuple[list[bytes], bool]:
    """A journal's records (one JSON line each) and whether a torn last line was left out.

    A torn last line (a crash or a full disk mid-write) is fine: Optuna skips it. A corrupt
    line before the end would stop Optuna with a JSON traceback and lock the study away, so it
    is refused in one line that says how to repair it.
    """
    lines = path.read_bytes().split(b"\n")
    for i, line in enumerate(lines[:-1], 1):  # the last piece: "" or a torn record
        try:
            json.loads(line)
        except ValueError:
            raise NasError(
                f"{path} line {i} is not a valid record; to resume with everything recorded "
                f"before it, keep a copy and cut the file there: head -n {i - 1} {path} > "
                f"{path}.fixed && mv {path}.fixed {path}") from None
    return lines[:-1], bool(lines[-1])


def check_journal(path: Path) -> None:
    """Refuse a journal with a corrupt record before its end (see ``journal_records``)."""
    if path.is_file():
        journal_records(path)


def study_storage(results_dir: str | Path, name: str, storage: str | None = None):
    """The storage that holds study ``name``: ``storage`` or NAS_STORAGE, else the URL its
    study.json recorded, else its journal file (or an archive's journal.log.gz)."""
    out = study_dir(results_dir, name)
    storage = storage or os.environ.get("NAS_STORAGE")
    if storage is None:
        meta = out / "study.json"
        if not meta.is_file():
            raise NasError(f"unknown study {name!r}: no {meta}")
        saved = json.loads(meta.read_text()).get("storage", "")
        if ":***@" in saved:
            raise NasError(f"study.json keeps the storage URL without its password ({saved}); "
                           "set NAS_STORAGE to the full URL")
        storage = None if saved.endswith("journal.log") else saved
    return open_storage(storage, out)


def load_study(results_dir: str | Path, name: str, storage: str | None = None) -> optuna.Study:
    try:
        return optuna.load_study(study_name=name,
                                 storage=study_storage(results_dir, name, storage))
    except KeyError:
        raise NasError(f"unknown study {name!r} in its storage") from None


def is_rejected(t: FrozenTrial) -> bool:
    return t.state == TrialState.PRUNED and "rejected" in t.user_attrs


def cut_reason(t: FrozenTrial) -> str | None:
    """Why a FAIL trial that did not fail on its own was cut short, else None: a candidate
    stopped by Ctrl-C, by the search phase's time limit or by its process dying is not a
    broken candidate, and a user reading "2 failed" after a resume should not look for one."""
    ua = t.user_attrs
    if t.state != TrialState.FAIL or "failed" in ua:
        return None
    if ua.get("interrupted"):
        return "interrupted"
    if ua.get("stale"):
        return "its process was gone"
    if "out_of_time" in ua:
        return f"time limit ({ua['out_of_time']})"
    return None  # FAIL with no mark: an exception that crashed its worker, a real failure


def _final(values) -> float | None:
    return values[-1] if values else None


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: parameters, size, accuracies, epochs run, state, seconds."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        ua = t.user_attrs
        hist = ua.get("history") or []
        test = ua.get("test_acc") or []
        state = t.state.name.lower()
        if is_rejected(t):
            state = "rejected"
        elif t.state == TrialState.PRUNED:
            state = "pruned"
        elif t.state == TrialState.FAIL or "failed" in ua or ua.get("interrupted"):
            state = "failed"  # also one a stop cut short: one word for both, apart in "reason"
        best_i = max(range(len(test)), key=test.__getitem__) if test else None
        row = {
            "number": t.number,
            "state": state,
            "n_params": ua.get("n_params"),
            "macs": ua.get("macs"),
            "rf": ua.get("rf"),
            "arch": ua.get("arch"),
            "scaled": ua.get("scaled"),  # widths x this to fit the budget (nas/fit.py)
            "val_acc": hist[-1]["val_acc"] if hist else None,
            "test_acc": _final(test),
            "best_test_acc": test[best_i] if test else None,
            "best_test_epoch": best_i + 1 if test else None,
            "epochs_run": len(hist),
            "rungs_run": len(ua.get("rungs", [])),  # cheap rungs trained before the full run
            "rung_val_acc": ua["rungs"][-1]["val_acc"] if ua.get("rungs") else None,
            "seconds": (t.duration.total_seconds() if t.duration else None),
            "reason": (ua.get("rejected") or ua.get("failed") or ua.get("no_full_run")
                       or cut_reason(t)),
        }
        row.update({f"param_{k}": v for k, v in t.params.items()})
        rows.append(row)
    import pandas as pd

    df = pd.DataFrame(rows)
    for col in ("n_params", "macs", "rf", "best_test_epoch"):  # ints, blank where not trained
        if col in df:
            df[col] = df[col].astype("Int64")
    return df


def read_trials(folder: str | Path) -> pd.DataFrame:
    """A finished study's trials table as ``nas report`` or the search wrote it: trials.parquet
    where there is one (the repository keeps only that for archived studies), else trials.csv."""
    import pandas as pd

    folder = Path(folder)
    if (folder / "trials.parquet").is_file():
        return pd.read_parquet(folder / "trials.parquet")
    if (folder / "trials.csv").is_file():
        return pd.read_csv(folder / "trials.csv")
    raise NasError(f"{folder}: no trials.parquet or trials.csv (run: nas report {folder.name} "
                   f"--results-dir {folder.parent})")


def completed(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.values and not math.isnan(t.values[0]) and "failed" not in t.user_attrs]


def full_train_s(study: optuna.Study) -> float | None:
    """Median seconds of one full-length training in this study (None before the first)."""
    times = [t.user_attrs["full_train_s"] for t in completed(study)
             if "full_train_s" in t.user_attrs]
    return statistics.median(times) if times else None


def race_train_s(study: optuna.Study, k: int) -> float | None:
    """Seconds of the longest full-length training among the top ``k`` by validation: the
    race retrains exactly those, and the best are often the larger, slower nets."""
    top = sorted((t for t in completed(study) if "full_train_s" in t.user_attrs),
                 key=lambda t: -t.values[0])[:k]
    return max(t.user_attrs["full_train_s"] for t in top) if top else None


def winner(study_json: Path) -> dict | None:
    """The seed race's winner as written in study.json, or None."""
    if not study_json.is_file():
        return None
    return json.loads(study_json.read_text()).get("winner")


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The study's selection rule: highest final-epoch validation accuracy, then fewer params."""
    done = completed(study)
    if not done:
        raise NasError(f"study {study.study_name!r} has no completed trial")
    return max(done, key=lambda t: (t.values[0], -t.user_attrs.get("n_params", 0)))


def get_trial(study: optuna.Study, which: str | int, study_json: Path | None = None
              ) -> FrozenTrial:
    """'winner' (the seed race's), 'best' (by the search's own validation score), 'auto' (the
    winner if the race ran, else best) or a trial number."""
    which = str(which)
    if which in ("winner", "auto"):
        w = winner(study_json) if study_json is not None else None
        if w is not None:
            which = str(w["trial"])
        elif which == "winner":
            raise NasError(f"study {study.study_name!r} has no seed-race winner in its "
                           "study.json (the race runs at the end of nas search); use --trial "
                           "best or a number")
        else:
            which = "best"
    if which == "best":
        return best_trial(study)
    try:
        number = int(which)
    except ValueError:
        raise NasError(f"--trial takes a number, 'winner', 'best' or 'auto', got {which!r}"
                       ) from None
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise NasError(f"study {study.study_name!r} has no trial {number} "
                       f"(0..{len(trials) - 1})")
    t = trials[number]
    if t not in completed(study):
        raise NasError(f"trial {number} did not complete (state {t.state.name}"
                       + (f": {t.user_attrs['rejected']}" if is_rejected(t) else "") + ")")
    return t


def rerun_recipe(train_config: dict, search_bf16: bool | None) -> dict:
    """A trial's recipe, to train again, with the precision the search was given. A trial
    records the precision it ran in, but where the search left it to the hardware (None:
    auto), a rerun follows the machine it runs on: a study searched where bf16 is native and
    verified or resumed where it is not would otherwise train in emulated bf16, ~5x slower."""
    return {**train_config, "bf16": search_bf16}


def trial_model(results_dir: Path, study_name: str, which: str | int) -> tuple:
    """(name, spec, train config) of a study's trial, its precision as ``rerun_recipe``."""
    from nas.config import TrainConfig
    from nas.spec import ArchSpec

    study = load_study(results_dir, study_name)
    study_json = study_dir(results_dir, study_name) / "study.json"
    t = get_trial(study, which, study_json)
    spec = ArchSpec.from_dict(t.user_attrs["spec"])
    search_bf16 = json.loads(study_json.read_text()).get("bf16") if study_json.is_file() else None
    cfg = TrainConfig.from_dict(rerun_recipe(t.user_attrs["train_config"], search_bf16))
    return f"{study_name}-trial{t.number}", spec, cfg


def top_table(study: optuna.Study, k: int = 10) -> str:
    df = trials_frame(study)
    if df.empty or "val_acc" not in df:
        return ""
    df = df[df.state == "complete"].sort_values(["val_acc", "n_params"], ascending=[False, True])
    if df.empty:
        return ""
    cols = ["number", "n_params", "val_acc", "test_acc", "best_test_acc", "best_test_epoch",
            "epochs_run", "seconds", "scaled", "arch"]
    if df.test_acc.isna().all():  # searched without --record-test: no test column to show
        cols = [c for c in cols if "test" not in c]
    if df.scaled.isna().all():  # nothing was scaled to fit (or a study from before)
        cols.remove("scaled")
    return "top trials (selected on validation accuracy):\n" + df[cols].head(k).to_string(
        index=False, float_format=lambda v: f"{v:.2f}")


def trial_fce(t: FrozenTrial, rungs_cfg: list, epochs: int) -> float:
    """One trial's cost in FCE: a rung of E epochs on a fraction F of the images (``rungs_cfg``
    as study.json records it) costs E * F / epochs, each full-length epoch 1 / epochs."""
    fce = 0.0
    for r in t.user_attrs.get("rungs") or []:
        frac = rungs_cfg[r["rung"]][1] if r["rung"] < len(rungs_cfg) else None
        fce += r["epochs"] * (frac or 1.0) / epochs
    return fce + len(t.user_attrs.get("history") or []) / epochs


def search_cost(study: optuna.Study, study_json: Path | None = None) -> dict:
    """What a search spent, in candidates and full-candidate equivalents (FCE).

    One FCE is one full-length training on all the search's training images: a rung of E
    epochs on a fraction F of them costs E * F / epochs of it. The seed race (race.json beside
    study.json) adds one FCE per run. Wall time runs from the first trial's start to the last
    trial's end, or to the winner's naming when the race ran, less the pauses: spans when no
    trial was running (a study stopped in one session and resumed in the next) do not count;
    where race.json records each run's start and end, the race counts only while a run went,
    so a race stopped and resumed later counts no more than an unbroken one.
    """
    from datetime import datetime

    meta = json.loads(study_json.read_text()) if study_json and study_json.is_file() else {}
    epochs = meta.get("epochs") or 15
    trained = [t for t in study.get_trials(deepcopy=False)
               if t.user_attrs.get("rungs") or t.user_attrs.get("history")]
    rungs_cfg = meta.get("rungs") or []
    at_rung: dict[int, int] = {}
    fce = 0.0
    for t in trained:
        for r in t.user_attrs.get("rungs") or []:
            at_rung[r["rung"]] = at_rung.get(r["rung"], 0) + 1
        fce += trial_fce(t, rungs_cfg, epochs)
    race_path = study_json.with_name("race.json") if study_json else None
    runs = list(json.loads(race_path.read_text())["runs"].values()) if race_path and \
        race_path.is_file() else []
    race_runs = len(runs)
    spans = sorted((t.datetime_start, t.datetime_complete)
                   for t in study.get_trials(deepcopy=False)
                   if t.datetime_start and t.datetime_complete)
    named = (meta.get("winner") or {}).get("named")
    if runs and all("start" in r for r in runs):  # each race run's own span, where recorded
        spans += [(datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"]))
                  for r in runs]
    elif named and spans:  # else the race runs from the last trial's end to the naming
        last = max(end for _, end in spans)
        spans.append((last, max(last, datetime.fromisoformat(named))))
    spans.sort()
    wall_s, covered = 0.0, None  # the union of the spans: each adds what lies past the others
    for start, end in spans:
        begin = start if covered is None else max(start, covered)
        if end > begin:
            wall_s += (end - begin).total_seconds()
            covered = end
    full = sum(bool(t.user_attrs.get("history")) for t in trained)
    return {
        "candidates": len(trained), "at_rung": dict(sorted(at_rung.items())), "full": full,
        "race_runs": race_runs, "fce": round(fce + race_runs, 2),
        "fce_search": round(fce, 2), "wall_s": round(wall_s),
        "candidates_per_hour": round(len(trained) / (wall_s / 3600), 1) if wall_s else None,
    }


def cost_text(c: dict) -> str:
    rungs = ", ".join(f"{n} at rung {k}" for k, n in c["at_rung"].items())
    return (f"{c['candidates']} candidates trained ({rungs + ', ' if rungs else ''}"
            f"{c['full']} to full length), {c['race_runs']} race runs; "
            f"{c['fce']:.1f} full-candidate equivalents ({c['fce_search']:.1f} before the race) "
            f"in {c['wall_s'] / 60:.0f} min wall: "
            + (f"{c['candidates_per_hour']:.0f} candidates/hour" if c["candidates_per_hour"]
               else "-"))
