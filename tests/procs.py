"""Helpers shared by the test files: tiny searches in-process and in a child process, and
waiting on processes that are started, signalled and outlive their parent."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def alive(pid: int) -> bool:
    """The process runs: an exited orphan may linger as a zombie where pid 1 does not reap."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def wait_for(pred, timeout: float = 120) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


TINY = ["--train-limit", "600", "--eval-limit", "300", "--val-size", "1000", "--epochs", "2",
        "--rungs", "1x0.5", "--race-top", "1", "--race-seeds", "1",
        "--no-progress"]


def nas(capsys, *argv):
    from nas.cli import main

    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def study(results: Path, name: str):
    from nas.studyio import load_study

    return load_study(results, name)


def search_argv(tmp_path, name, trials, *extra) -> list:
    """A tiny search's arguments: for `start`, or for `nas` in the test's own process."""
    return ["search", "--study", name, "--trials", str(trials), "--results-dir", str(tmp_path),
            *TINY, *extra]


def start(tmp_path, name, trials, *extra):
    cmd = [sys.executable, "-m", "nas.cli", *search_argv(tmp_path, name, trials, *extra)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def n_state(tmp_path, name, state):
    try:
        return sum(t.state.name == state for t in study(tmp_path, name).trials)
    except Exception:
        return 0


def n_running_with_epochs_left(tmp_path, name):
    """RUNNING trials that have trained 1 to 5 of their 8 epochs (--epochs 8): a signal sent
    now finds them still training, even on a loaded machine. (Seen RUNNING in its last epoch,
    a trial can end before the signal lands, and the test would fail by chance; seen with no
    epoch yet, it may be a candidate about to be rejected by the budget.)"""
    try:
        return sum(t.state.name == "RUNNING" and 1 <= len(t.intermediate_values) <= 5
                   for t in study(tmp_path, name).trials)
    except Exception:
        return 0
