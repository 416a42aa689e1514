"""Two `nas search` processes on one PostgreSQL database, as two machines would run them.

Needs a server: .ci/run starts one (.ci/postgres.sh) and sets NAS_TEST_POSTGRES to its URL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pandas as pd
import pytest

URL = os.environ.get("NAS_TEST_POSTGRES")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not URL, reason="no PostgreSQL (NAS_TEST_POSTGRES unset)")]


def search(results, study, trials):
    cmd = [sys.executable, "-m", "nas.cli", "search", "--study", study, "--storage", URL,
           "--trials", str(trials), "--results-dir", str(results), "--train-limit", "600",
           "--eval-limit", "300", "--val-size", "1000", "--epochs", "6", "--pruner", "none",
           "--race-top", "0", "--max-params", "8000", "--no-progress"]
    env = {**os.environ, "NAS_HEARTBEAT_S": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)


def test_two_machines_and_a_kill9(tmp_path):
    import optuna

    from nas.studyio import open_storage

    name = f"pg-{uuid.uuid4().hex[:8]}"
    a, b = tmp_path / "machine_a", tmp_path / "machine_b"
    pa = search(a, name, 4)
    storage = open_storage(URL, tmp_path)

    def running_trial_of(pid):
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            return None
        for t in study.get_trials(deepcopy=False):
            if (t.state.name == "RUNNING" and t.user_attrs.get("pid") == pid
                    and 1 <= len(t.intermediate_values) <= 5):
                return t.number
        return None

    pb = search(b, name, 4)
    t0, killed = time.time(), None
    while killed is None and time.time() - t0 < 180:
        killed = running_trial_of(pa.pid)
        time.sleep(0.2)
    assert killed is not None, "machine A never ran a trial"
    pa.kill()  # kill -9 in the middle of a trial
    pa.wait()
    out, _ = pb.communicate(timeout=300)
    assert pb.returncode == 0, out
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    # the heartbeat: B marked A's orphaned trial FAIL (the documented behaviour: not retried)
    assert trials[killed].state.name == "FAIL"
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)), "no trial number twice"
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert done and not [t for t in trials if t.state.name == "RUNNING"]
    rows = pd.read_csv(b / name / "trials.csv")
    for t in done:  # nothing lost: weights on the machine that trained it, and a row
        home = a if t.user_attrs["pid"] == pa.pid else b
        assert (home / name / "trials" / f"{t.number:04d}.pt").is_file()
        assert (rows.number == t.number).any()
    assert {t.user_attrs["pid"] for t in trials if "pid" in t.user_attrs} == {pa.pid, pb.pid}
    meta = json.loads((b / name / "study.json").read_text())
    assert ":***@" in meta["storage"] and "nas:nas@" not in meta["storage"]
