"""The search on tiny subsets, in this process: budget gate, errors, rungs and race, time."""

from __future__ import annotations

import os
import time

import pytest
from procs import TINY, nas, study


def test_search_budget_gate_and_files(capsys, tmp_path):
    rc, out, err = nas(capsys, "search", "--study", "s", "--trials", "3", "--max-params",
                       "5000", "--results-dir", str(tmp_path), "--enqueue", "baseline",
                       "--no-scale-to-fit", *TINY)
    assert rc == 0, err
    st = study(tmp_path, "s")
    rejected = [t for t in st.trials if "rejected" in t.user_attrs]
    assert rejected, "the enqueued 7,416-param baseline must be rejected at 5,000"
    base = st.trials[0]
    assert base.user_attrs["n_params"] == 7416 and base.state.name == "PRUNED"
    assert base.user_attrs["enqueued"] == "baseline"
    assert base.constraints["params"] == pytest.approx((7416 - 5000) / 5000)  # relative overrun
    assert "history" not in base.user_attrs  # never trained
    done = [t for t in st.trials if t.state.name == "COMPLETE"]
    assert all(t.user_attrs["n_params"] < 5000 for t in done)
    assert all(t.constraints["params"] <= 0 for t in done)
    d = tmp_path / "s"
    for f in ("study.json", "journal.log", "trials.csv"):
        assert (d / f).is_file()
    import pandas as pd

    df = pd.read_csv(d / "trials.csv")
    assert {"number", "state", "n_params", "macs", "val_acc", "test_acc", "epochs_run",
            "seconds", "param_optimizer"} <= set(df.columns)
    assert (df.state == "rejected").sum() == len(rejected)
    for t in done:
        assert (d / "trials" / f"{t.number:04d}.pt").is_file()
        assert "test_acc" not in t.user_attrs  # not evaluated without --record-test
    assert "rejected from their spec" in out and "top trials" in out
    # --no-progress: one line per trained candidate (a log file shows the search moving)
    for t in done:
        assert f"trial {t.number} ({t.user_attrs['n_params']:,} params) val {t.value:.2f}%" in out
    assert "trial 0 " not in out  # the rejected baseline was never trained


def test_rungs_race_and_winner(capsys, tmp_path):
    """Cheap rungs first, then the seed race names a winner in study.json, test untouched."""
    import json

    from nas.studyio import get_trial

    rc, out, err = nas(capsys, "search", "--study", "r", "--trials", "5", "--results-dir",
                       str(tmp_path), *TINY, "--race-top", "2", "--race-seeds", "2")
    assert rc == 0, err
    st = study(tmp_path, "r")
    trained = [t for t in st.trials if "rejected" not in t.user_attrs]
    assert all(t.user_attrs["rungs"][0]["images"] == 300 for t in trained)  # 600 x 0.5
    stopped = [t for t in trained if t.state.name == "PRUNED"]
    assert all("history" not in t.user_attrs for t in stopped)  # never trained in full
    meta = json.loads((tmp_path / "r" / "study.json").read_text())
    w = meta["winner"]
    assert len(w["race_vals"]) == 2 and "test set was not used" in w["rule"]
    runs = json.loads((tmp_path / "r" / "race.json").read_text())["runs"]
    assert {r["seed"] for r in runs.values()} == {100000, 100001}
    assert all(r["start"] <= r["end"] for r in runs.values())  # what the wall time counts
    assert get_trial(st, "winner", tmp_path / "r" / "study.json").number == w["trial"]
    assert f"winner: trial {w['trial']}" in out
    # two finalists with two scores each: the lead and its noise are recorded and logged
    assert ("margin" in w) == (sum(len(r["race_vals"]) == 2 for r in meta["race"]) == 2)
    if "margin" in w:
        assert f"race: the winner leads trial {w['margin']['runner_up']} by " in out
    assert f"race: trial {w['trial']} seed 100000 epoch 2/2 val " in out  # a line an epoch
    assert not any("test_acc" in t.user_attrs for t in st.trials)
    # a second run finds the race done: nothing retrained, the same winner
    rc, out, err = nas(capsys, "search", "--study", "r", "--trials", "5", "--results-dir",
                       str(tmp_path), *TINY, "--race-top", "2", "--race-seeds", "2")
    assert rc == 0 and "seed race:" not in out
    assert json.loads((tmp_path / "r" / "study.json").read_text())["winner"]["trial"] == \
        w["trial"]


def test_race_on_fresh_folds(capsys, tmp_path):
    """--race-split fresh: each race seed holds out its own fold, never the search's. A resume
    keeps the study's split (one raced before the flag: the search's); a resume under the
    other split runs the race again rather than mix runs judged on other images."""
    import json

    from nas.race import race_fold

    assert [race_fold(i, 6) for i in range(7)] == [1, 2, 3, 4, 5, 1, 2]
    args = ["search", "--study", "f", "--trials", "2", "--results-dir", str(tmp_path), *TINY,
            "--race-seeds", "2"]
    rc, out, err = nas(capsys, *args, "--race-split", "fresh")
    assert rc == 0, err
    runs = json.loads((tmp_path / "f" / "race.json").read_text())["runs"]
    assert sorted((r["seed"], r["fold"]) for r in runs.values()) == [(100000, 1), (100001, 2)]
    assert {r["split"] for r in runs.values()} == {"fresh"}
    meta = json.loads((tmp_path / "f" / "study.json").read_text())
    assert meta["race_split"] == "fresh"
    assert "disjoint from the search's (folds 1, 2)" in meta["winner"]["rule"]
    assert "each seed on its own validation fold" in out
    rc, out, err = nas(capsys, *args)  # resumed: its own split, the race is done
    assert rc == 0 and "seed race:" not in out, err
    rc, out, err = nas(capsys, *args, "--race-split", "search")  # again, on fold 0
    assert rc == 0 and "seed race:" in out, err
    runs = json.loads((tmp_path / "f" / "race.json").read_text())["runs"]
    assert sorted((r["fold"], r["split"]) for r in runs.values()) == [(0, "search")] * 2
    meta = json.loads((tmp_path / "f" / "study.json").read_text())
    del meta["race_split"]  # a study made before the flag raced on the search's split
    (tmp_path / "f" / "study.json").write_text(json.dumps(meta))
    rc, out, err = nas(capsys, *args)
    assert rc == 0 and "seed race:" not in out, err
    rc, _, err = nas(capsys, *args, "--study", "g", "--race-split", "fresh",
                     "--val-size", "40000")
    assert rc == 2 and "needs a second validation fold" in err


def test_race_and_verify_follow_this_machines_precision(capsys, tmp_path, monkeypatch):
    """A study searched where bf16 is native (its trials record bf16) and raced or verified
    where it is not trains in fp32 there, unless the search forced bf16 with --bf16."""
    import json

    from nas.studyio import trial_model

    small = [*TINY, "--train-limit", "200", "--eval-limit", "100"]  # bf16 may be emulated here
    monkeypatch.setenv("NAS_NATIVE_BF16", "1")  # the first machine
    rc, _, err = nas(capsys, "search", "--study", "p", "--trials", "1", "--results-dir",
                     str(tmp_path), *small, "--race-top", "0")
    assert rc == 0, err
    assert all(t.user_attrs["train_config"]["bf16"] for t in study(tmp_path, "p").trials
               if "train_config" in t.user_attrs)
    monkeypatch.setenv("NAS_NATIVE_BF16", "0")  # resumed on a machine without native bf16
    rc, out, err = nas(capsys, "search", "--study", "p", "--trials", "1", "--results-dir",
                       str(tmp_path), *small)
    assert rc == 0 and "seed race:" in out, err
    runs = json.loads((tmp_path / "p" / "race.json").read_text())["runs"]
    assert [r["bf16"] for r in runs.values()] == [False]
    assert trial_model(tmp_path, "p", "winner")[2].bf16 is None  # auto: this machine's
    rc, _, err = nas(capsys, "verify", "p", "--trial", "winner", "--seeds", "0",
                     "--train-limit", "200", "--eval-limit", "100", "--epochs", "1",
                     "--results-dir", str(tmp_path), "--no-progress")
    assert rc == 0, err
    ran = json.loads(next((tmp_path / "verify").glob("p-trial*/train_config.json"))
                     .read_text())
    assert ran["bf16"] is False  # what ran (verify.json keeps the asked-for: null, auto)
    meta = json.loads((tmp_path / "p" / "study.json").read_text())
    (tmp_path / "p" / "study.json").write_text(json.dumps({**meta, "bf16": True}))
    assert trial_model(tmp_path, "p", "winner")[2].bf16 is True  # as if searched with --bf16


def test_multi_objective(capsys, tmp_path):
    rc, out, err = nas(capsys, "search", "--study", "mo", "--trials", "2", "--objectives",
                       "accuracy,params", "--results-dir", str(tmp_path), *TINY)
    assert rc == 0, err
    st = study(tmp_path, "mo")
    assert len(st.directions) == 2
    assert all(len(t.values) == 2 for t in st.trials if t.state.name == "COMPLETE")


def error_line(capsys, *argv, match):
    rc, _, err = nas(capsys, *argv)
    lines = [x for x in err.splitlines() if x.strip()]
    assert rc == 2, err
    assert match in lines[-1], err
    return lines[-1]


def test_search_bad_inputs(capsys, tmp_path):
    r = ["--results-dir", str(tmp_path)]
    error_line(capsys, "search", "--space", "nope", *r, *TINY, match="unknown search space")
    raising = tmp_path / "boom.py"
    raising.write_text("raise RuntimeError('kaboom')\n")
    error_line(capsys, "search", "--space", str(raising), *r, *TINY, match="kaboom")
    sampling = tmp_path / "boom2.py"
    sampling.write_text("def sample(trial):\n    raise ValueError('bad sample')\n")
    error_line(capsys, "search", "--space", str(sampling), *r, *TINY, match="bad sample")
    error_line(capsys, "search", "--max-peak-kb", "nan", *r, *TINY, match="finite, got nan")
    error_line(capsys, "search", "--workers", "100000", *r, *TINY, match="4 per CPU core")
    assert not (tmp_path / "general-8k").exists()  # refused before a study is made
    line = error_line(capsys, "search", "--study", "tiny", "--max-params", "100",
                      "--max-rejections", "20", *r, *TINY, match="below every net")
    assert "20 candidates in a row" in line
    assert "space 'separable'" in line  # the default, auto, under 5,000 parameters
    error_line(capsys, "search", "--trials", "0", *r, *TINY, match="--trials must be >= 1")
    error_line(capsys, "search", "--startup-trials", "-1", *r, *TINY,
               match="--startup-trials must be >= 0")
    error_line(capsys, "search", "--prune-from", "16", *r, *TINY,
               match="--prune-from must be an epoch from 1 to")
    error_line(capsys, "search", "--storage", "nosuchdb://x", *r, *TINY, match="bad storage URL")
    error_line(capsys, "search", *r, *TINY, "--val-size", "0", match="--val-size must be >= 1")
    error_line(capsys, "search", *r, *TINY, "--timeout", "-1", match="--timeout must be > 0")
    error_line(capsys, "search", *r, *TINY, "--budget-fce", "1",  # TINY's race: 1 run, 1 FCE
               match="--budget-fce must be finite and more than the seed race's 1 FCE")
    error_line(capsys, "search", *r, *TINY, "--rungs", "2x0.5,1x0.5", match="rungs must cost")
    error_line(capsys, "search", *r, *TINY, "--rungs", "3x0.5", match="a rung needs 1 to 2 epochs")
    error_line(capsys, "search", *r, *TINY, "--rungs", "2by3", match="EPOCHSxFRACTION")
    error_line(capsys, "search", *r, *TINY, "--eta", "1", match="--eta must be >= 2")
    error_line(capsys, "search", *r, *TINY, "--eta", "3,x", match="--eta takes an integer")
    error_line(capsys, "search", *r, *TINY, "--eta", "3,5",  # TINY has one rung
               match="--eta gives 2 values for 1 rungs (1x0.5): give one, or one per rung")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):  # root ignores permissions: use a path under a file instead
        ro = tmp_path / "boom.py" / "sub"
    error_line(capsys, "search", "--results-dir", str(ro), *TINY, match="not writable")


def test_sqlite_storage(capsys, tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    rc, _, err = nas(capsys, "search", "--study", "q", "--trials", "1", "--storage", url,
                     "--results-dir", str(tmp_path), *TINY)
    assert rc == 0, err
    assert (tmp_path / "s.db").is_file()
    assert len(study(tmp_path, "q").trials) >= 1


def test_startup_trials_reach_the_sampler():
    from nas.search import SearchConfig, make_sampler

    sampler = make_sampler(SearchConfig(startup_trials=3), worker=0)
    assert sampler._n_startup_trials == 3  # TPE models the space after 3 trials, not 10


def test_sampler_seeds_never_shared_between_studies():
    """Worker 0 keeps --seed; no (seed, worker) pair of one study draws what another study's
    worker draws. Before, worker 1 of --seed 1 drew worker 0 of --seed 2's start-up trials."""
    import optuna

    from nas.search import SearchConfig, make_sampler, sampler_seed

    pairs = [(s, w) for s in range(20) for w in range(4)]
    seeds = [sampler_seed(s, w) for s, w in pairs]
    assert len(set(seeds)) == len(pairs)
    assert [sampler_seed(s, 0) for s in range(20)] == list(range(20))

    def first_draws(seed, worker):
        study = optuna.create_study(sampler=make_sampler(SearchConfig(seed=seed), worker))
        return [study.ask().suggest_float("x", 0, 1) for _ in range(3)]

    assert first_draws(1, 1) != first_draws(2, 0)
    assert first_draws(2, 0) == first_draws(2, 0)  # still reproducible


def _halving_fates(pruner, steps, values) -> list[int]:
    """The rung each of a sequence of candidates stopped at (len(steps): trained in full)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    fates = []
    for scores in values:
        t = study.ask()
        for k, step in enumerate(steps):
            t.report(scores[k], step)
            if t.should_prune():
                study.tell(t, state=optuna.trial.TrialState.PRUNED)
                fates.append(k)
                break
        else:
            study.tell(t, scores[-1])
            fates.append(len(steps))
    return fates


def test_an_eta_per_rung_decides_as_optuna_with_one_and_cuts_the_last_rung_with_more():
    """nas.halving.RungPruner: with 3,3 it prunes exactly where Optuna's successive halving
    (eta 3) does; with 3,5 rung 0 is the same and fewer candidates train in full."""
    import random

    import optuna

    from nas.halving import RungPruner, rung_steps
    from nas.search import make_pruner

    rng = random.Random(0)  # scores that drift up, as a sampler that learns makes them
    values = [[rng.gauss(0.01 * i, 0.3) for _ in range(2)] for i in range(80)]
    assert rung_steps((3, 3)) == (1, 3) and rung_steps((3, 5, 2)) == (1, 3, 15)
    optunas = _halving_fates(optuna.pruners.SuccessiveHalvingPruner(min_resource=1,
                                                                    reduction_factor=3),
                             (1, 3), values)
    assert _halving_fates(RungPruner((3, 3)), (1, 3), values) == optunas
    assert isinstance(make_pruner("rungs", 15, eta=3), optuna.pruners.SuccessiveHalvingPruner)
    strict = make_pruner("rungs", 15, eta=(3, 5))
    assert isinstance(strict, RungPruner)
    fates = _halving_fates(strict, rung_steps((3, 5)), values)
    assert [f == 0 for f in fates] == [f == 0 for f in optunas]  # rung 0: one in 3, as before
    assert 0 < fates.count(2) < optunas.count(2)
    best = max((i for i in range(80) if fates[i] >= 1), key=lambda i: values[i][1])
    assert fates[best] == 2  # the best score a rung has seen always goes on


def test_search_with_an_eta_per_rung(capsys, tmp_path):
    """--eta 2,3: rung k reports at step 1, then 2; the study keeps both and resumes only so."""
    import json

    args = ["search", "--study", "e", "--trials", "4", "--results-dir", str(tmp_path), *TINY,
            "--rungs", "1x0.25,1x0.5", "--race-top", "0"]
    rc, out, err = nas(capsys, *args, "--eta", "2,3")
    assert rc == 0, err
    assert "after rungs (1 ep x 0.25, 1 ep x 0.5, 1 in 2, then 1 in 3, goes on)" in out
    meta = json.loads((tmp_path / "e" / "study.json").read_text())
    assert meta["settings"]["eta"] == [2, 3]
    steps = {s for t in study(tmp_path, "e").trials for s in t.intermediate_values}
    assert steps and steps <= {1, 2}
    rc, _, err = nas(capsys, *args, "--eta", "2")
    assert rc == 2 and "eta" in err.splitlines()[-1]
    rc, out, err = nas(capsys, *args)  # no --eta: the study keeps its own, not the default
    assert rc == 0 and "1 in 2, then 1 in 3, goes on" in out, err


def test_the_default_eta_is_stricter_at_the_last_of_several_rungs():
    from nas.config import DEFAULT_RUNGS, parse_eta
    from nas.search import SearchConfig, check_config

    assert len(DEFAULT_RUNGS) == 2 and check_config(SearchConfig()).eta == (3, 5)
    assert check_config(SearchConfig(rungs=((1, 0.5),))).eta == 3
    assert check_config(SearchConfig(rungs=((1, 0.2), (2, 0.3), (3, 0.5)))).eta == (3, 3, 5)
    assert check_config(SearchConfig(eta=4)).eta == 4  # one eta for every rung, as given
    assert parse_eta("3,3") == 3 and parse_eta("3,5") == (3, 5)


def test_prune_from_moves_the_median_comparison():
    from nas.search import make_pruner

    assert make_pruner("median", 15)._n_warmup_steps == 5  # Optuna compares from step 5 on
    assert make_pruner("median", 15, prune_from=12)._n_warmup_steps == 12


def test_trials_table_names_every_failure_failed():
    """An unmarked FAIL (a crash), an interrupted candidate and one that raised all read
    "failed" in trials.csv, with their reasons apart."""
    import optuna

    from nas.studyio import trials_frame

    st = optuna.create_study()
    for attrs in ({}, {"interrupted": True}, {"failed": "RuntimeError: boom"}):
        t = st.ask()
        for k, v in attrs.items():
            t.set_user_attr(k, v)
        st.tell(t, state=optuna.trial.TrialState.FAIL)
    st.tell(st.ask(), 1.0)
    df = trials_frame(st)
    assert list(df.state) == ["failed", "failed", "failed", "complete"]
    # the reason tells a stop from a broken candidate
    assert list(df.reason[1:3]) == ["interrupted", "RuntimeError: boom"]


def test_counts_keep_cut_trials_apart_from_failed_ones():
    """A resumed search's summary must not call the trials its last stop cut "failed": only a
    candidate that failed on its own (non-finite loss, an exception) counts as failed."""
    import optuna

    from nas.search import count_states

    st = optuna.create_study()
    for attrs in ({"interrupted": True}, {"stale": True}, {"out_of_time": "rung 0"},
                  {"failed": "RuntimeError: boom"}, {}):  # {}: a crash, unmarked
        t = st.ask()
        for k, v in attrs.items():
            t.set_user_attr(k, v)
        st.tell(t, state=optuna.trial.TrialState.FAIL)
    c = count_states(st)
    assert (c["failed"], c["cut"], c["trained"]) == (2, 3, 5)


def test_a_second_ctrl_c_inside_training_still_counts_as_a_stop(capsys, tmp_path, monkeypatch):
    """The second Ctrl-C raises KeyboardInterrupt wherever the candidate is, not through the
    stop flag. The trial must still be marked a stop, so the summary says "cut", not
    "failed", and nobody goes looking for a broken net."""
    from nas import search as search_module
    from nas.search import count_states

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(search_module, "train", ctrl_c)
    rc, out, err = nas(capsys, "search", "--study", "cc", "--trials", "2", "--results-dir",
                       str(tmp_path), *TINY)
    assert rc == 130, err
    st = study(tmp_path, "cc")
    (t,) = [t for t in st.trials if "rejected" not in t.user_attrs]
    assert t.state.name == "FAIL" and t.user_attrs["interrupted"] is True
    c = count_states(st)
    assert (c["failed"], c["cut"]) == (0, 1)


def test_search_wall_time_leaves_out_the_pause_between_sessions(tmp_path):
    """Two trials an hour apart (stopped, resumed next session), then the race: the wall time
    is the 10 + 5 minutes the trials ran plus the 3 of the race, not the hour between."""
    import json
    from datetime import datetime, timedelta

    import optuna

    from nas.studyio import search_cost

    t0 = datetime(2026, 11, 29, 7, 0)
    st = optuna.create_study()
    for start, minutes in ((t0, 10), (t0 + timedelta(hours=1), 5)):
        st.add_trial(optuna.trial.FrozenTrial(
            number=0, trial_id=0, state=optuna.trial.TrialState.COMPLETE, value=90.0,
            values=None, datetime_start=start, datetime_complete=start + timedelta(minutes=minutes),
            params={}, distributions={}, user_attrs={"history": [{}] * 15}, system_attrs={},
            intermediate_values={}))
    named = t0 + timedelta(hours=1, minutes=8)
    (tmp_path / "study.json").write_text(json.dumps({"winner": {"named": named.isoformat()}}))
    c = search_cost(st, tmp_path / "study.json")
    assert c["wall_s"] == 18 * 60 and c["candidates_per_hour"] == round(2 / 0.3, 1)
    # a race whose runs record their spans, stopped after one run and resumed two hours
    # later: 3 + 3 minutes of race, not the pause between (nor the time before it started)
    runs = {f"0:{s}": {"start": (t0 + timedelta(hours=h)).isoformat(),
                       "end": (t0 + timedelta(hours=h, minutes=3)).isoformat()}
            for s, h in ((100000, 1.25), (100001, 3.25))}
    (tmp_path / "race.json").write_text(json.dumps({"runs": runs}))
    c = search_cost(st, tmp_path / "study.json")
    assert c["wall_s"] == 21 * 60 and c["race_runs"] == 2


def test_timeout_covers_the_search_and_its_race(capsys, tmp_path):
    """--timeout alone: as many candidates as fit, then the race, all within the time."""
    import json

    t0 = time.time()
    rc, out, err = nas(capsys, "search", "--study", "t", "--timeout", "12", "--results-dir",
                       str(tmp_path), *TINY)
    wall = time.time() - t0
    assert rc == 0, err
    assert json.loads((tmp_path / "t" / "study.json").read_text())["winner"]
    st = study(tmp_path, "t")
    assert sum(t.state.name == "COMPLETE" for t in st.trials) >= 1
    # the deadline is checked between epochs: a 2-epoch candidate of 600 images overruns it by
    # a second or two at most; the rest is process start and data loading
    assert wall < 12 + 15, f"{wall:.0f} s"


def test_budget_fce_ends_the_search_phase_and_leaves_the_race_its_share(capsys, tmp_path):
    """--budget-fce alone: candidates until the budget less the race's share is spent, no full
    run started that the rest cannot pay for, then the race; the same on any machine."""
    import json

    from nas.search import spent_fce
    from nas.studyio import search_cost

    # TINY: a rung costs 1 epoch x 0.5 / 2 = 0.25 FCE, a full run 1, the race 1 run = 1 FCE;
    # 2.75 leaves the search phase 1.75: one full run (1.25 with its rung) and no second
    rc, out, err = nas(capsys, "search", "--study", "b", "--budget-fce", "2.75",
                       "--results-dir", str(tmp_path), *TINY)
    assert rc == 0, err
    assert "2.75 FCE in all" in out and "(--budget-fce 2.75)" in out
    meta = json.loads((tmp_path / "b" / "study.json").read_text())
    assert meta["budget_fce"] == 2.75 and meta["winner"]  # the race ran and named one
    st = study(tmp_path, "b")
    assert sum(t.state.name == "COMPLETE" for t in st.trials) == 1
    trained = [t for t in st.trials if "rungs" in t.user_attrs]
    assert len(trained) < 1000  # the budget ended it, not --trials
    cfg_like = type("C", (), {"rungs": ((1, 0.5),), "epochs": 2})
    spent = spent_fce(st, cfg_like)
    assert 1.25 <= spent <= 1.75, spent  # within the search phase's share
    cost = search_cost(st, tmp_path / "b" / "study.json")
    assert cost["fce"] == pytest.approx(spent + 1.0)  # the race's one run on top: 2.75 at most
    ended = [t for t in trained if "no_full_run" in t.user_attrs]
    for t in ended:  # a candidate that passed its rung with less than 1 FCE left
        assert "needs 1 FCE" in t.user_attrs["no_full_run"] and "history" not in t.user_attrs
        assert f"trial {t.number} " in out and "of --budget-fce 2.75 left" in out


def test_full_run_estimate_scales_the_last_rung():
    from nas.search import full_run_s

    rung = {"rung": 1, "epochs": 3, "images": 25_000, "train_s": 30.0, "val_acc": 98.0}
    assert full_run_s(rung, 15, 50_000) == pytest.approx(300.0)  # 5x the epochs, 2x the images
    assert full_run_s(rung, 3, 25_000) == pytest.approx(30.0)


def test_a_full_run_that_would_be_cut_is_not_started(capsys, tmp_path, monkeypatch):
    """Near the search phase's end a candidate whose full run would not end in time stays
    pruned at its rung (its score kept for TPE), and the worker's search phase ends there,
    rather than training part of a full run that the deadline then cuts."""
    from nas import search as search_module

    monkeypatch.setattr(search_module, "full_run_s", lambda rung, epochs, images: 1e6)
    rc, out, err = nas(capsys, "search", "--study", "nf", "--trials", "4", "--timeout", "900",
                       "--results-dir", str(tmp_path), *TINY)
    assert rc == 0, err
    trained = [t for t in study(tmp_path, "nf").trials if "rungs" in t.user_attrs]
    assert len(trained) == 1  # the phase ended after the first candidate that got that far
    t = trained[0]
    assert t.state.name == "PRUNED" and "history" not in t.user_attrs
    assert t.intermediate_values  # its rung score reached the sampler
    assert "left before the race" in t.user_attrs["no_full_run"]
    assert f"trial {t.number} " in out and "not trained in full: needs ~" in out
    # without a deadline there is nothing to check against: the full run goes ahead
    rc, out, err = nas(capsys, "search", "--study", "nf2", "--trials", "1", "--results-dir",
                       str(tmp_path), *TINY)
    assert rc == 0, err
    assert any(t.state.name == "COMPLETE" for t in study(tmp_path, "nf2").trials)


def test_budgets_in_macs_peak_and_int8_size(capsys, tmp_path):
    """--max-macs alone (no parameter budget), and combined budgets: each is a constraint,
    and no candidate over any of them trains."""
    rc, out, err = nas(capsys, "search", "--study", "m", "--trials", "3", "--max-params", "0",
                       "--max-macs", "300000", "--results-dir", str(tmp_path), *TINY)
    assert rc == 0, err
    st = study(tmp_path, "m")
    assert all(set(t.constraints) == {"macs"} for t in st.trials if t.constraints)
    trained = [t for t in st.trials if "history" in t.user_attrs or "rungs" in t.user_attrs]
    assert trained and all(t.user_attrs["macs"] < 300000 for t in trained)
    assert "< 300,000 MACs" in out
    rc, out, err = nas(capsys, "search", "--study", "c", "--trials", "2", "--max-params", "6000",
                       "--max-peak-kb", "6", "--max-int8-kb", "5", "--results-dir",
                       str(tmp_path), *TINY)
    assert rc == 0, err
    for t in study(tmp_path, "c").trials:
        if "rungs" in t.user_attrs:
            ua = t.user_attrs
            assert ua["peak_int8_bytes"] < 6000 and ua["int8_bytes"] < 5000
    error_line(capsys, "search", "--max-params", "0", "--results-dir", str(tmp_path), *TINY,
               match="give a budget")


def test_journal_torn_or_corrupt(capsys, tmp_path):
    """A torn last line is skipped; a corrupt one is refused with how to repair it."""
    rc, _, err = nas(capsys, "search", "--study", "j", "--trials", "1", "--results-dir",
                     str(tmp_path), *TINY)
    assert rc == 0, err
    journal = tmp_path / "j" / "journal.log"
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"op_code": 4, "worker_id"')  # a crash mid-write
    assert len(study(tmp_path, "j").trials) >= 1
    lines = whole.split(b"\n")
    lines[3] = b"{garbage"
    journal.write_bytes(b"\n".join(lines))
    rc, _, err = nas(capsys, "report", "j", "--results-dir", str(tmp_path))
    assert rc == 2 and "line 4 is not a valid record" in err and "head -n 3" in err


def test_race_margin_says_when_the_finalists_are_level():
    """The winner's lead over the runner-up, against the standard error of the difference from
    the race's own repeats: auto-8k-seed2's race (0.015 ahead, seed spread 0.070) is level; a
    lead of 0.3 with repeats 0.01 apart is not; one finalist, or no repeats, gives nothing."""
    from nas.race import margin

    table = [{"trial": 22, "race_vals": [99.33, 99.23], "mean": 99.28},
             {"trial": 19, "race_vals": [99.26, 99.27], "mean": 99.265},
             {"trial": 17, "race_vals": [99.12, 99.26], "mean": 99.19}]
    m = margin(table, table[0])
    assert m["runner_up"] == 19 and m["df"] == 3 and m["level"]
    assert m["lead"] == pytest.approx(0.015) and m["seed_sd"] == pytest.approx(0.0704, abs=1e-4)
    assert m["se"] == pytest.approx(0.0704, abs=1e-4)  # sd * sqrt(1/2 + 1/2)
    clear = [{"trial": 1, "race_vals": [99.60, 99.61], "mean": 99.605},
             {"trial": 2, "race_vals": [99.30, 99.31], "mean": 99.305}]
    m = margin(clear, clear[0])
    assert m["runner_up"] == 2 and not m["level"] and m["lead"] == pytest.approx(0.3)
    assert margin(clear[:1], clear[0]) is None
    single = [{"trial": 1, "race_vals": [99.6], "mean": 99.6},
              {"trial": 2, "race_vals": [99.3], "mean": 99.3}]
    assert margin(single, single[0]) is None


def test_race_plan_follows_the_pool():
    """Race runs are planned as the pool runs them: 6 runs of 100 s on 2 workers take three
    rounds, so with 250 s left the third round is left out, not started past --timeout."""
    from nas.race import plan

    assert plan([100] * 6, 2, 0.0, 250.0) == [True] * 4 + [False] * 2
    assert plan([100] * 6, 2, 0.0, None) == [True] * 6
    assert plan([100] * 6, 1, 0.0, 350.0) == [True] * 3 + [False] * 3
    assert plan([300, 100, 100], 2, 0.0, 250.0) == [False, True, True]


def test_a_cut_race_runs_a_prefix_of_the_ranking():
    """When time runs short the race drops candidates from the bottom of the ranking, never the
    best one in favour of a faster, worse one (seen on a GPU: trial 6 at 96.6% search val took
    92 s, trial 5 at 76.0% 56 s, 60 s were left; the race ran trial 5 alone and named it)."""
    from nas.race import fit

    need, seeds = {6: 92.0, 5: 56.0}, [100000, 100001]
    assert fit([6, 5], seeds, set(), need, 6, 0.0, 60.0) == (0, 0)  # search val decides
    assert fit([6, 5], seeds, set(), need, 6, 0.0, 100.0) == (2, 2)
    assert fit([6, 5], seeds, set(), need, 2, 0.0, 100.0) == (2, 1)  # (1, 2): fewer candidates
    assert fit([6, 5], seeds, set(), need, 1, 0.0, 100.0) == (1, 1)
    assert fit([6, 5], seeds, set(), need, 1, 0.0, 250.0) == (2, 1)  # 2 x 2 would take 296 s
    assert fit([6, 5], seeds, set(), need, 1, 0.0, 150.0) == (2, 1)
    assert fit([6, 5], seeds, set(), need, 2, 0.0, None) == (2, 2)
    # runs a stopped race already did cost nothing when it goes on
    assert fit([6, 5], seeds, {(6, 100000), (5, 100000)}, need, 6, 0.0, 100.0) == (2, 2)


def test_worker_threads_share_the_cores_or_the_users_cap(monkeypatch):
    from nas.runs import worker_threads

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert [worker_threads(w) for w in (1, 2, 3, 16)] == [8, 4, 2, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # as set by hand, or by the suite's workers
    assert [worker_threads(w) for w in (1, 2, 3)] == [2, 1, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "")  # unset in effect: the cores
    assert worker_threads(2) == 4
