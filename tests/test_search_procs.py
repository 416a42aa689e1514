"""The search as processes: resume after SIGINT / SIGTERM / kill -9, workers that share a
journal, crash or outlive their parent, and Ctrl-C in the race. Apart from test_search.py so
that pytest-xdist's two workers (one file each) share the slow tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from procs import (
    TINY,
    alive,
    n_running_with_epochs_left,
    n_state,
    nas,
    search_argv,
    start,
    study,
    wait_for,
)


@pytest.mark.slow
def test_resume_after_sigint(capsys, tmp_path):
    p = start(tmp_path, "int", 50, "--epochs", "8")
    wait_for(lambda: n_state(tmp_path, "int", "COMPLETE") >= 1
             and n_running_with_epochs_left(tmp_path, "int") == 1)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 130, out
    assert "Resume with: nas search --study int" in out
    st = study(tmp_path, "int")
    done = {t.number for t in st.trials if t.state.name == "COMPLETE"}
    interrupted = [t for t in st.trials if t.user_attrs.get("interrupted")]
    assert len(interrupted) == 1 and interrupted[0].state.name == "FAIL"
    assert not [t for t in st.trials if t.state.name == "RUNNING"]
    trained = len(done) + n_state(tmp_path, "int", "FAIL") + sum(
        t.state.name == "PRUNED" and "rejected" not in t.user_attrs for t in st.trials)
    # resuming with other settings is refused in one line naming the flag; then it resumes
    # (both in this process: a fresh one would only add its 5 s of start-up)
    rc, _, err = nas(capsys, *search_argv(tmp_path, "int", trained + 1))
    assert rc == 2 and "--epochs (was 8, now 2)" in err.strip().splitlines()[-1], err
    rc, out, err = nas(capsys, *search_argv(tmp_path, "int", trained + 1, "--epochs", "8"))
    assert rc == 0, err
    st = study(tmp_path, "int")
    assert done <= {t.number for t in st.trials if t.state.name == "COMPLETE"}
    assert "resuming" in out


@pytest.mark.slow
def test_two_workers_share_a_journal_and_stop_together(tmp_path):
    """--workers 2: both processes train trials of one study, numbered without a clash, each
    completed one with its weights and history; `kill -INT <pid>` of the main process alone
    (not the process group, as Ctrl-C would) stops both, each marking its trial FAIL."""
    p = start(tmp_path, "w2", 50, "--epochs", "8", "--workers", "2", "--train-limit", "2000")
    wait_for(lambda: n_state(tmp_path, "w2", "COMPLETE") >= 1
             and n_running_with_epochs_left(tmp_path, "w2") == 2, timeout=180)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 130, out
    st = study(tmp_path, "w2")
    assert not [t for t in st.trials if t.state.name == "RUNNING"]
    interrupted = [t for t in st.trials if t.user_attrs.get("interrupted")]
    assert len({t.user_attrs["pid"] for t in interrupted}) == 2, "both processes stopped a trial"
    numbers = [t.number for t in st.trials]
    assert len(numbers) == len(set(numbers))
    done = [t for t in st.trials if t.state.name == "COMPLETE"]
    assert done
    for t in done:  # none lost: every completed trial has its weights and history
        assert (tmp_path / "w2" / "trials" / f"{t.number:04d}.pt").is_file()
        assert len(t.user_attrs["history"]) == 8


@pytest.mark.slow
def test_sigint_in_the_race_stops_its_runs(capsys, tmp_path):
    """kill -INT of the main process during a two-worker race ends it within seconds, not
    when the running race trainings finish."""
    import threading

    # one candidate in-process, no race; then the race alone (--trials 1: nothing more to
    # search) on 20,000 images, so that each of its two runs takes over 10 s
    rc, _, err = nas(capsys, "search", "--study", "rint", "--trials", "1", "--results-dir",
                     str(tmp_path), *TINY, "--race-top", "0")
    assert rc == 0, err
    p = start(tmp_path, "rint", 1, "--workers", "2", "--race-seeds", "2", "--train-limit",
              "20000", "--allow-changed")
    lines, racing = [], threading.Event()

    def read():
        for line in p.stdout:
            lines.append(line)
            if line.startswith("seed race:"):
                racing.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert racing.wait(timeout=120), "".join(lines)
    time.sleep(2)  # the pool's two runs have started
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    p.wait(timeout=60)
    reader.join(timeout=10)
    assert time.time() - t0 < 8, "the race's runs were waited for"
    assert p.returncode == 130, "".join(lines)
    assert not (tmp_path / "rint" / "race.json").exists()  # no run finished, none kept


@pytest.mark.slow
def test_resume_after_kill9(capsys, tmp_path):
    p = start(tmp_path, "k9", 50, "--epochs", "8")
    wait_for(lambda: n_state(tmp_path, "k9", "COMPLETE") >= 1
             and n_running_with_epochs_left(tmp_path, "k9") == 1)
    p.kill()
    p.wait()
    before = study(tmp_path, "k9")
    done = {t.number for t in before.trials if t.state.name == "COMPLETE"}
    running = [t.number for t in before.trials if t.state.name == "RUNNING"]
    assert len(running) == 1
    argv = search_argv(tmp_path, "k9", len(before.trials) + 1, "--epochs", "8")
    rc, out, err = nas(capsys, *argv)
    assert rc == 0, err
    assert f"marked stale running trials {running}" in out + err
    after = study(tmp_path, "k9")
    assert after.trials[running[0]].state.name == "FAIL"
    assert done <= {t.number for t in after.trials if t.state.name == "COMPLETE"}


@pytest.mark.slow
def test_workers_exit_when_their_parent_is_killed(tmp_path):
    """A spawned worker outlives a SIGKILLed parent by about a second, not for good."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import multiprocessing as mp, time\n"
        "from nas.runs import exit_with_parent\n"
        "def child():\n"
        "    exit_with_parent()\n"
        "    time.sleep(120)\n"
        "if __name__ == '__main__':\n"
        "    p = mp.get_context('spawn').Process(target=child)\n"
        "    p.start()\n"
        "    print(p.pid, flush=True)\n"
        "    time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(1.0)
    parent.kill()
    parent.wait()

    wait_for(lambda: not alive(child), timeout=20)


@pytest.mark.slow
def test_sigterm_stops_mid_epoch_without_a_traceback(tmp_path):
    """SIGTERM acts as Ctrl-C: the running candidate stops within a step (not at the end of
    its epoch), is marked FAIL, finished trials stay, and the resume command is printed."""
    p = start(tmp_path, "term", 50, "--epochs", "8", "--train-limit", "8000")
    wait_for(lambda: n_running_with_epochs_left(tmp_path, "term") == 1, timeout=240)
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 130, out
    assert time.time() - t0 < 30, "stopped mid-epoch, not after it"
    assert "Traceback" not in out and "stopping:" in out
    assert "Resume with: nas search --study term" in out
    st = study(tmp_path, "term")
    stopped = [t for t in st.trials if t.user_attrs.get("interrupted")]
    assert len(stopped) == 1 and stopped[0].state.name == "FAIL"


WRAPPED = """import multiprocessing, os, pathlib, time
from nas.spaces import get_space

_inner = get_space("general").sample
FLAG = pathlib.Path(__file__).with_name("worker.pid")

def in_worker():
    return multiprocessing.parent_process() is not None  # a spawned search worker
"""


@pytest.mark.slow
def test_a_crashed_worker_is_reported_and_the_run_fails(capsys, tmp_path):
    """--workers 2 whose worker dies (exit code 7): the main process finishes the trials, then
    says which process died with which code, in one line, and exits non-zero."""
    space = tmp_path / "crash.py"
    space.write_text(WRAPPED + "\n\ndef sample(trial):\n    if in_worker():\n"
                     "        FLAG.write_text(str(os.getpid()))\n        os._exit(7)\n"
                     "    t0 = time.time()\n"  # the main process waits until the worker died
                     "    while not FLAG.exists() and time.time() - t0 < 120:\n"
                     "        time.sleep(0.1)\n"
                     "    return _inner(trial)\n")
    rc, out, err = nas(capsys, "search", "--space", str(space), "--study", "c", "--trials", "2",
                       "--workers", "2", "--results-dir", str(tmp_path), *TINY)
    assert rc == 2
    last = err.strip().splitlines()[-1]
    worker = (tmp_path / "worker.pid").read_text()
    assert f"worker process(es) died: pid {worker} exit code 7" in last
    assert "winner" not in (tmp_path / "c" / "study.json").read_text()  # no race after a crash


@pytest.mark.slow
def test_an_error_in_the_main_process_stops_the_workers(tmp_path):
    """The main process fails while its worker trains: one error line, exit 2, and the worker
    is gone at once rather than training on behind a terminal that looks hung."""
    space = tmp_path / "mainfail.py"
    space.write_text(WRAPPED + "\n\ndef sample(trial):\n    if in_worker():\n"
                     "        if not FLAG.exists():\n"  # its mtime: the worker's first sample
                     "            FLAG.write_text(str(os.getpid()))\n"
                     "        return _inner(trial)\n"
                     "    t0 = time.time()\n"
                     "    while not FLAG.exists() and time.time() - t0 < 120:\n"
                     "        time.sleep(0.1)\n"
                     "    raise RuntimeError('the main process fails')\n")
    p = subprocess.Popen([sys.executable, "-m", "nas.cli", "search", "--space", str(space),
                          "--study", "m", "--trials", "50", "--workers", "2", "--results-dir",
                          str(tmp_path), *TINY], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    # 50 candidates would keep the worker busy for minutes: the main process must not wait
    _, err = p.communicate(timeout=180)
    assert p.returncode == 2 and "the main process fails" in err.strip().splitlines()[-1], err
    worker = int((tmp_path / "worker.pid").read_text())
    assert time.time() - (tmp_path / "worker.pid").stat().st_mtime < 15

    wait_for(lambda: not alive(worker), timeout=10)
