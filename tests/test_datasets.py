"""Datasets by name and the user's own: npz and class folders, made here, small."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nas.cli import main
from nas.datasets import check_spec, load_data
from nas.errors import NasError
from nas.presets import get_preset


def make_npz(path: Path, n=120, size=12, channels=0, classes=3, **override) -> str:
    """Class k is a bright square at a place of its own: learnable in a few epochs."""
    rng = np.random.default_rng(0)

    def split(m):
        y = rng.integers(0, classes, m)
        shape = (m, size, size) + ((channels,) if channels else ())
        x = rng.integers(0, 40, shape).astype(np.uint8)
        for i, k in enumerate(y):
            x[i, 2 + 3 * k: 5 + 3 * k, 2:6] = 250
        return x, y

    (xtr, ytr), (xte, yte) = split(n), split(n // 3)
    arrays = {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte, **override}
    np.savez(path, **arrays)
    return f"npz:{path}"


def test_npz_shapes_stats_and_spec_check(tmp_path):
    name = make_npz(tmp_path / "d.npz", channels=3)
    data = load_data(name, None, "cpu", 20)
    info = data.info
    assert info.shape == (3, 12, 12) and info.classes == ("0", "1", "2")
    assert len(data.val) == 20 and len(data.train) == 100 and data.train.x.shape[1:] == (3, 12, 12)
    # mean and std from the training images, per channel: normalized train is ~0 mean
    assert data.train.x.mean(dim=(0, 2, 3)).abs().max() < 0.2
    with pytest.raises(NasError, match="in_channels 1 .the data has 3.*num_classes 10"):
        check_spec(get_preset("baseline").spec, info)


@pytest.mark.parametrize("override,match", [
    ({"x_train": np.zeros((120, 12, 10), np.uint8)}, "train images are"),
    ({"x_train": np.zeros((5, 12, 12), np.float32)}, "must be uint8"),
    ({"y_train": np.full(120, 7)}, "at least 2 classes"),
    ({"y_test": -np.ones(40, np.int64)}, "labels must be in"),
    ({"y_train": np.zeros(120, np.int64), "y_test": np.zeros(40, np.int64)},
     "at least 2 classes"),
    ({"x_test": np.zeros((0, 12, 12), np.uint8), "y_test": np.zeros(0, np.int64)},
     "test split is empty"),
    ({"y_train": np.zeros(7, np.int64)}, "labels"),
])
def test_bad_npz_is_one_line(tmp_path, capsys, override, match):
    name = make_npz(tmp_path / "bad.npz", **override)
    rc = main(["data", "stats", "--dataset", name, "--val-size", "0", "--results-dir",
               str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and match in err[0], err


def test_class_folders(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    for split, n in (("train", 6), ("test", 3)):
        for cls in ("cat", "dog"):
            d = tmp_path / "imgs" / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(
                    d / f"{i}.png")
    data = load_data(f"folder:{tmp_path / 'imgs'}", None, "cpu", 0)
    assert data.info.shape == (3, 10, 10) and data.info.classes == ("cat", "dog")
    assert len(data.train) == 12 and len(data.test) == 6
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "imgs" / "train" / "cat" /
                                                        "odd.png")
    with pytest.raises(NasError, match="mixed sizes"):
        load_data.__wrapped__(f"folder:{tmp_path / 'imgs'}", None, "cpu", 0)


def test_search_and_train_adapt_to_the_data(tmp_path, capsys):
    """The general space builds for 3-channel 12x12 images of 3 classes; a preset made for
    MNIST is refused in one line before training."""
    import json

    name = make_npz(tmp_path / "d.npz", n=300, channels=3)
    rc = main(["search", "--dataset", name, "--study", "n", "--trials", "3", "--val-size", "60",
               "--epochs", "2", "--rungs", "1x0.5", "--race-top", "1", "--race-seeds", "1",
               "--max-params", "3000", "--results-dir", str(tmp_path), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    meta = json.loads((tmp_path / "n" / "study.json").read_text())
    assert meta["dataset"] == name and meta["winner"]
    from nas.studyio import load_study

    # nobody said whether a mirror keeps these labels: the study records it, the space tries
    assert load_study(tmp_path, "n").user_attrs["mirror"] is None
    for t in load_study(tmp_path, "n").trials:
        if "spec" in t.user_attrs:
            s = t.user_attrs["spec"]
            assert (s["in_channels"], s["input_size"], s["num_classes"]) == (3, 12, 3)
    rc = main(["train", "--preset", "baseline", "--dataset", name, "--epochs", "1",
               "--results-dir", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "spec does not fit dataset" in err[-1]
    # the export embeds the data's statistics and classes and checks itself on the npz's test
    # split in a fresh process (export exits 2 unless model.py agrees to the image)
    rc = main(["export", "n", "--results-dir", str(tmp_path), "--out", str(tmp_path / "e")])
    assert rc == 0, capsys.readouterr().err
    r = json.loads((tmp_path / "e" / "export.json").read_text())
    assert r["dataset"] == name and r["exported_correct"] == r["recorded_correct"] > 0
    rc = main(["export", "n", "--results-dir", str(tmp_path), "--out", str(tmp_path / "e2"),
               "--dataset", "mnist"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "spec does not fit dataset mnist" in err[-1]
    _export_reads_class_folders(tmp_path, name)


def _export_reads_class_folders(tmp_path, npz_name):
    """The same images as class folders: model.py reads them as torchvision's ImageFolder
    does, and predict() takes raw uint8 N x H x W x C images."""
    import json
    import subprocess
    import sys

    from PIL import Image

    from nas.build import build
    from nas.config import TrainConfig
    from nas.export import render_model
    from nas.spec import ArchSpec
    from nas.train import evaluate

    z = np.load(npz_name[4:])
    for split in ("train", "test"):
        for i, (img, label) in enumerate(zip(z[f"x_{split}"], z[f"y_{split}"], strict=True)):
            d = tmp_path / "f" / split / f"c{label}"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(d / f"{i:04d}.png")
    data = load_data(f"folder:{tmp_path / 'f'}", None, "cpu", 0)
    out = tmp_path / "e"
    spec = ArchSpec.from_dict(json.loads((out / "spec.json").read_text()))
    (out / "model.py").write_text(render_model(spec, "t", data.info))
    net = build(spec)
    net.load_state_dict(torch.load(out / "weights.pt", weights_only=True))
    acc = evaluate(net, data.test, TrainConfig(bf16=False))[1]
    res = subprocess.run([sys.executable, "model.py", "--json"], cwd=out, capture_output=True,
                         text=True, check=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ""})
    got = json.loads(res.stdout)
    assert got["total"] == len(data.test) and got["correct"] == round(acc * len(data.test) / 100)
    code = (f"import numpy as np, torch, model; z = np.load({npz_name[4:]!r}); "
            "print(int((model.predict(model.load(), torch.from_numpy(z['x_test'])) == "
            "torch.from_numpy(z['y_test'])).sum()))")
    res = subprocess.run([sys.executable, "-c", code], cwd=out, capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ""})
    assert int(res.stdout) == got["correct"]


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed (.ci/run installs it)")
def test_fashion_mnist_from_debian():
    data = load_data("fashion-mnist", None, "cpu", 1000)
    assert data.info.classes[9] == "Ankle boot" and data.info.shape == (1, 28, 28)
    assert len(data.train) == 59000 and len(data.test) == 10000
    assert 0.27 < data.info.mean[0] < 0.30  # Fashion-MNIST's own statistics, not MNIST's
    assert torch.bincount(data.test.y).tolist() == [1000] * 10


def test_verify_of_a_study_uses_its_dataset(tmp_path):
    """`nas verify STUDY` reads the dataset from study.json without being told."""
    import json

    from nas.cli import _dataset_for

    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "study.json").write_text(json.dumps({"dataset": "fashion-mnist"}))

    class Args:
        dataset, study, results_dir = None, "s", str(tmp_path)

    assert _dataset_for(Args) == "fashion-mnist"
    Args.dataset = "mnist"
    assert _dataset_for(Args) == "mnist"


def test_a_small_dataset_races_on_the_search_split(tmp_path, capsys, monkeypatch):
    """Where the validation images leave no second fold, a fresh-fold race by default falls
    back to the search's split, in one line; asked for by name, it is a one-line error."""
    import json

    import nas.search

    monkeypatch.setattr(nas.search, "DEFAULT_RACE_SPLIT", "fresh")
    name = make_npz(tmp_path / "d.npz", n=60)
    argv = ["search", "--dataset", name, "--study", "s", "--trials", "1", "--val-size", "40",
            "--epochs", "1", "--rungs", "none", "--race-top", "1", "--race-seeds", "1",
            "--max-params", "3000", "--results-dir", str(tmp_path), "--no-progress"]
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "leave no second fold; the race judges on the search's split" in out
    meta = json.loads((tmp_path / "s" / "study.json").read_text())
    assert meta["race_split"] == "search" and meta["winner"]
    rc = main([*argv, "--study", "t", "--race-split", "fresh"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "needs a second validation fold" in err[-1]
