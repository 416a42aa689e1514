"""Bad input gives one line on stderr and exit code 2; good input prints what it should."""

import json

import pytest
from procs import alive, wait_for

from nas.cli import main


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_summary_batch1(capsys):
    rc, out, _ = run(capsys, "summary", "--preset", "batch1")
    assert rc == 0 and "6,379,786" in out


def test_presets_and_spaces_list(capsys):
    rc, out, _ = run(capsys, "presets")
    assert rc == 0 and "baseline" in out and "ref7918" in out
    rc, out, _ = run(capsys, "spaces")
    assert rc == 0 and "mnist_8k" in out and "general" in out and "auto" in out


def one_line_error(capsys, *argv, match=""):
    rc, _, err = run(capsys, *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert len(lines) == 1 or lines[-1].startswith("nas"), err
    assert match in lines[-1], err


def test_bad_inputs(capsys, tmp_path):
    one_line_error(capsys, "summary", "--preset", "nope", match="unknown preset 'nope'")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    one_line_error(capsys, "summary", "--spec", str(bad), match="not valid JSON")
    impossible = tmp_path / "imp.json"
    impossible.write_text(json.dumps({"layers": [
        {"type": "conv", "out": 8, "k": 3}, {"type": "maxpool", "k": 2},
        {"type": "conv", "out": 10, "k": 15}]}))
    one_line_error(capsys, "train", "--spec", str(impossible), match="layer 2 (conv2)")
    one_line_error(capsys, "train", "--preset", "baseline", "--epochs", "0", match="--epochs")
    one_line_error(capsys, "train", "--preset", "baseline", "--data-dir",
                   str(tmp_path / "missing"), match="no MNIST in")
    one_line_error(capsys, "summary", "--spec", str(tmp_path / "none.json"), match="cannot read")
    for seeds, match in (("-1", "0..2**32-1"), ("1,1", "repeats a seed"), ("x", "integers")):
        one_line_error(capsys, "verify", "--preset", "baseline", "--seeds", seeds, match=match)
    from nas.presets import get_preset

    (tmp_path / "spec.json").write_text(get_preset("baseline").spec.to_json())
    for cfg, match in (({"lr": "0.1"}, "lr must be float"), ({"lr": -0.1}, "must be > 0, got -0.1"),
                       ({"epochs": 2.5}, "epochs must be int"), ({"bf16": "yes"}, "bf16 must"),
                       ({"gamma": 0, "schedule": "step"}, "gamma must be in (0, 1]"),
                       ({"momentum": 0.01}, "onecycle cycles SGD momentum")):
        (tmp_path / "train_config.json").write_text(json.dumps(cfg))
        one_line_error(capsys, "train", "--spec", str(tmp_path / "spec.json"), match=match)


def test_train_writes_files(capsys, tmp_path, data_dir, monkeypatch):
    # A two-epoch run of a small preset: history CSV, spec, weights, curves, summary.
    from nas import runs

    orig = runs.train

    def small(*a, **kw):
        return orig(*a, **{**kw, "train_limit": 1000, "eval_limit": 500})

    monkeypatch.setattr(runs, "train", small)
    rc, out, _ = run(capsys, "train", "--preset", "ref7070", "--epochs", "2", "--seeds", "0,1",
                     "--results-dir", str(tmp_path), "--no-progress", "--no-channels-last",
                     "--no-bf16")
    assert rc == 0, out
    d = tmp_path / "train" / "ref7070"
    for f in ("history_seed0.csv", "history_seed1.csv", "weights_seed0.pt", "spec.json",
              "train_config.json", "curves.html", "summary.json", "log.txt"):
        assert (d / f).is_file(), f
    # one plotly.min.js for every page under the results folder, by a relative path
    assert not (d / "plotly.min.js").exists() and (tmp_path / "plotly.min.js").is_file()
    assert 'src="../../plotly.min.js"' in (d / "curves.html").read_text()
    s = json.loads((d / "summary.json").read_text())
    assert s["n_params"] == 7070 and set(s["per_seed"]) == {"0", "1"}
    # the machine that spent the time, so wall times can be compared across machines
    env = s["environment"]
    assert env["cpu"].strip() and isinstance(env["cpu_native_bf16"], bool)
    cfg = json.loads((d / "train_config.json").read_text())
    assert cfg["channels_last"] is False and cfg["bf16"] is False  # on by default: flags win
    assert "final-epoch test accuracy over 2 seeds" in out


def test_resume_reuses_seeds_and_goes_on_from_a_checkpoint(capsys, tmp_path, monkeypatch):
    """Seeds trained apart into one --name, one of them killed mid-run, summarized by --resume."""
    from nas import runs

    orig, kill_at = runs.train, {}

    def small(*a, **kw):
        show = kw["callback"]

        def callback(r):
            show(r)
            if kill_at.get(kw["seed"]) == r["epoch"]:
                raise KeyboardInterrupt  # Ctrl-C right after this epoch's checkpoint
        return orig(*a, **{**kw, "callback": callback, "train_limit": 1000, "eval_limit": 500})

    monkeypatch.setattr(runs, "train", small)
    args = ["verify", "--preset", "ref7070", "--epochs", "3", "--results-dir", str(tmp_path),
            "--no-progress"]
    assert run(capsys, *args, "--seeds", "1", "--name", "whole")[0] == 0
    assert run(capsys, *args, "--seeds", "0", "--name", "r", "--resume")[0] == 0
    kill_at[1] = 2
    rc, out, err = run(capsys, *args, "--seeds", "1", "--name", "r", "--resume")
    assert rc == 130 and "go on with the same command and --resume" in out
    d = tmp_path / "verify" / "r"
    assert (d / "checkpoint_seed1.pt").is_file() and not (d / "history_seed1.csv").exists()
    kill_at.clear()
    rc, out, _ = run(capsys, *args, "--seeds", "0,1", "--name", "r", "--resume")
    assert rc == 0, out
    assert "seed 0: trained before" in out and "seed 1: going on from checkpoint_seed1.pt" in out
    assert "seed 1 epoch  3" in out and "seed 1 epoch  2" not in out
    assert not (d / "checkpoint_seed1.pt").exists()
    v = json.loads((d / "verify.json").read_text())
    whole = json.loads((tmp_path / "verify" / "whole" / "verify.json").read_text())
    assert set(v["per_seed"]) == {"0", "1"}
    assert v["per_seed"]["1"]["final_acc"] == whole["per_seed"]["1"]["final_acc"]
    assert "seed 0 epoch  1" in (d / "log.txt").read_text()  # the log of every part is kept
    one_line_error(capsys, *args, "--seeds", "0", "--name", "r", "--resume",
                   "--no-channels-last", match="train_config.json is another run's")
    # the monkeypatched limits are not the CLI's: as a run without limits, r matches
    one_line_error(capsys, *args, "--seeds", "0", "--name", "r", "--resume", "--train-limit",
                   "900", match="limits.json is another run's")


def test_verify_seeds_in_parallel_workers(capsys, tmp_path):
    """--workers 2: two spawned processes, one log, one summary; limits are recorded."""
    rc, out, err = run(capsys, "verify", "--preset", "ref7070", "--epochs", "1", "--seeds", "0,1",
                       "--workers", "2", "--train-limit", "1000", "--eval-limit", "500",
                       "--results-dir", str(tmp_path), "--no-progress")
    assert rc == 0, err
    d = tmp_path / "verify" / "ref7070"
    v = json.loads((d / "verify.json").read_text())
    assert set(v["per_seed"]) == {"0", "1"} and v["workers"] == 2
    assert v["limits"] == {"train_limit": 1000, "eval_limit": 500}
    log = (d / "log.txt").read_text()
    assert "seed 0 epoch  1" in log and "seed 1 epoch  1" in log and "2 at a time" in log
    assert "final-epoch test accuracy over 2 seeds" in log
    assert not list(d.glob("checkpoint_seed*"))
    rc, out, _ = run(capsys, "results", "--results-dir", str(tmp_path))
    assert "ref7070 (train_limit 1,000, eval_limit 500)" in out


@pytest.mark.parametrize("argv", [["--version-nope"], ["train"], ["frobnicate"]])
def test_usage_errors_exit_2(capsys, argv):
    rc, _, _ = run(capsys, *argv)
    assert rc == 2


def test_data_stats(capsys, tmp_path, data_dir):
    rc, out, _ = run(capsys, "data", "stats", "--results-dir", str(tmp_path))
    assert rc == 0
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    assert "60000" in lines["train (all)"] and "0.1307" in lines["train (all)"]
    assert "0.3081" in lines["train (all)"] and "10000" in lines["val"]
    from PIL import Image

    with Image.open(tmp_path / "data" / "samples.png") as im:  # 10 rows of 8 56-px digits
        assert im.height == 10 * (56 + 4) + 4 and im.width > 8 * (56 + 4)
        # row k holds digit k, enlarged: the tile matches the first training image of class k
        from nas.data import load_mnist

        mnist = load_mnist(None, "cpu", 10000)
        first3 = mnist.train.images[(mnist.train.y == 3).nonzero()[0, 0], 0]
        left = im.width - 8 * (56 + 4) - 4  # past the class names
        tile = im.crop((left, 4 + 3 * 60, left + 56, 4 + 3 * 60 + 56)).convert("L")
        assert tile.resize((28, 28), Image.NEAREST).tobytes() == first3.numpy().tobytes()


@pytest.mark.slow
def test_sigterm_stops_verify_and_its_workers(tmp_path):
    """A SIGTERM to the main process only (kill PID, timeout, a session's end) is Ctrl-C: one
    message, the resume hint, exit 130, and the spawned seed workers stop with it. Its default
    action used to end the process without a word and leave the workers idling."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    cmd = [sys.executable, "-m", "nas.cli", "verify", "--preset", "ref7070", "--epochs", "5",
           "--seeds", "0,1", "--workers", "2", "--train-limit", "2000", "--eval-limit", "300",
           "--results-dir", str(tmp_path), "--no-progress"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "verify" / "ref7070" / "log.txt"
    t0 = time.time()
    while not (log.is_file() and "epoch  1" in log.read_text()):
        assert p.poll() is None and time.time() - t0 < 240, p.stderr.read() if p.poll() else ""
        time.sleep(0.2)
    children = [int(c) for c in Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()]
    assert children
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted (SIGTERM)" in err and "--resume" in log.read_text()

    wait_for(lambda: not any(alive(c) for c in children), timeout=20)
