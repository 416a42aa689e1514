"""Report, export and verify over a tiny real study."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys

import pytest

from nas.cli import main

TINY = ["--train-limit", "1500", "--eval-limit", "400", "--val-size", "1000", "--epochs", "2",
        "--rungs", "1x0.5", "--race-top", "1", "--race-seeds", "1", "--record-test",
        "--no-progress"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    rc = main(["search", "--study", "s", "--trials", "4", "--results-dir", str(root),
               "--max-params", "6000", "--enqueue", "baseline", "--no-scale-to-fit", "--no-bf16",
               *TINY])  # fp32: bf16 would be emulated, 5x slower, on CPUs without it
    assert rc == 0
    return root


def nas(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_pareto_data(results):
    from nas.study_report import pareto_data
    from nas.studyio import load_study

    study = load_study(results, "s")
    df = pareto_data(study)
    assert (df.kind == "rejected").sum() >= 1  # the 7,416-param baseline at a 6,000 budget
    done = df[df.kind == "complete"]
    front = done[~done.dominated]
    assert len(front) >= 1
    for _, r in done[done.dominated].iterrows():  # every dominated point has a dominator
        assert ((done.n_params <= r.n_params) & (done.val_acc >= r.val_acc)
                & ((done.n_params < r.n_params) | (done.val_acc > r.val_acc))).any()
    for _, r in front.iterrows():
        assert not ((done.n_params <= r.n_params) & (done.val_acc >= r.val_acc)
                    & ((done.n_params < r.n_params) | (done.val_acc > r.val_acc))).any()


def test_report_traces_in_committed_bundle(results):
    """The committed results/plotly.min.js is plotly.js's cartesian bundle (1.5 MB, not the
    full 4.6 MB): every trace type our pages draw must be one it registers."""
    import re
    from pathlib import Path

    from nas.plots import curves_figure
    from nas.study_report import curves_data, report_figures
    from nas.studyio import load_study

    bundle = (Path(__file__).parents[1] / "results" / "plotly.min.js").read_text()
    registered = set(re.findall(r'moduleType:"trace",name:"(\w+)"', bundle))
    assert {"scatter", "bar"} <= registered
    study = load_study(results, "s")
    figs = [f for _, f in report_figures(study, 6000) if not isinstance(f, str)]
    figs += [curves_figure(curves_data(study))]  # verify's and train's curves.html
    used = {t.type for f in figs for t in f.data}
    assert "scatter" in used and used <= registered, used - registered


def test_report_files_and_screenshot(capsys, results, tmp_path):
    rc, out, err = nas(capsys, "report", "s", "--results-dir", str(results))
    assert rc == 0, err
    d = results / "s"
    page = (d / "report.html").read_text()
    # the one plotly.min.js at the results root, by a relative path: offline, never fetched
    assert '<script src="../plotly.min.js">' in page and "cdn.plot.ly" not in page
    assert "Pareto" in page and "Top trials" in page and "rejected from their spec" in page
    assert (results / "plotly.min.js").stat().st_size > 1_000_000
    # what the search spent: 4 candidates at one rung of 1 epoch on half the images (1/4 of a
    # 2-epoch training each), the survivors 2 epochs, and 1 race run
    from nas.studyio import load_study

    st = load_study(results, "s")
    full = sum(bool(t.user_attrs.get("history")) for t in st.trials)
    rung = sum(bool(t.user_attrs.get("rungs")) for t in st.trials)
    assert f"cost: {rung} candidates trained ({rung} at rung 0, {full} to full length), 1 race" \
        in out
    from nas.studyio import search_cost

    c = search_cost(st, d / "study.json")
    assert c["fce"] == pytest.approx(rung * 0.25 + full + 1, abs=0.01) and c["wall_s"] > 0
    assert not (d / "plotly.min.js").exists()
    # any size figure on the x-axis
    rc, _, err = nas(capsys, "report", "s", "--x", "macs", "--results-dir", str(results))
    assert rc == 0, err
    assert "MACs per image vs final-epoch validation accuracy" in (d / "report.html").read_text()
    rc, _, err = nas(capsys, "report", "s", "--results-dir", str(results))  # back to params
    page = (d / "report.html").read_text()
    import pandas as pd

    from nas.errors import NasError
    from nas.studyio import read_trials

    csv = pd.read_csv(d / "trials.csv")
    pd.testing.assert_frame_equal(read_trials(d), pd.read_parquet(d / "trials.parquet"))
    assert len(read_trials(d)) == len(csv) and list(read_trials(d).columns) == list(csv.columns)
    (d / "trials.parquet").rename(d / "trials.parquet.away")  # an archive without a report
    pd.testing.assert_frame_equal(read_trials(d), csv)
    (d / "trials.csv").rename(d / "trials.csv.away")
    with pytest.raises(NasError, match="no trials.parquet or trials.csv"):
        read_trials(d)
    (d / "trials.parquet.away").rename(d / "trials.parquet")
    (d / "trials.csv.away").rename(d / "trials.csv")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (.ci/run installs it)")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
         "--virtual-time-budget=5000", "--window-size=1200,1400", f"--screenshot={shot}",
         (d / "report.html").as_uri()],
        capture_output=True, timeout=120, check=False,
    )
    from PIL import Image

    img = Image.open(shot).convert("L")
    colors = img.getcolors(maxcolors=1 << 16)
    assert colors is None or len(colors) > 50, "screenshot is blank"
    hist = img.histogram()
    assert max(hist) < 0.97 * sum(hist), "screenshot is (almost) one colour"


def test_export_standalone_and_refusals(capsys, results, tmp_path, data_dir, monkeypatch):
    out = tmp_path / "exp"
    rc, text, err = nas(capsys, "export", "s", "--results-dir", str(results), "--out", str(out))
    assert rc == 0, err
    assert "identical" in text
    r = json.loads((out / "export.json").read_text())
    assert r["exported_correct"] == r["recorded_correct"]
    assert r["checked_in"] == "fp32"  # trained in fp32 (--no-bf16), checked in fp32
    assert r["proposed_by"] in ("sampler", "enqueued")
    # model.py runs on its own in a fresh process, from a folder without nas on the path
    assert f"({r['recorded_correct']}/400)" in standalone(out, data_dir)
    assert "import nas" not in (out / "model.py").read_text()
    # preset.json, copied into the presets folder, ships the design as --preset NAME
    from nas import presets

    found = tmp_path / "found"
    found.mkdir()
    shutil.copy(out / "preset.json", found / "mybest.json")
    monkeypatch.setattr(presets, "FOUND_DIR", found)
    # what the import of nas.presets does for every nas/found/*.json
    monkeypatch.setitem(presets.PRESETS._items, "mybest", presets._found(found / "mybest.json"))
    p = presets.get_preset("mybest")
    assert p.spec.to_dict() == json.loads((out / "spec.json").read_text())
    assert presets.found_source("mybest")["trial"] == r["trial"]
    # refusals: existing folder, unknown study, a trial that did not complete
    rc, _, err = nas(capsys, "export", "s", "--results-dir", str(results), "--out", str(out))
    assert rc == 2 and "--force" in err
    rc, _, err = nas(capsys, "export", "nope", "--results-dir", str(results), "--out", "x")
    assert rc == 2 and "unknown study 'nope'" in err
    rc, _, err = nas(capsys, "export", "s", "--trial", "0", "--results-dir", str(results),
                     "--out", str(tmp_path / "e0"))
    assert rc == 2 and "trial 0 did not complete" in err and "over budget" in err


def standalone(out, data_dir, *flags) -> str:
    """What the exported out/model.py prints, run in a fresh process without nas on the path."""
    from nas.data import prepare_raw

    return subprocess.run([sys.executable, "model.py", "--data-dir",
                           str(prepare_raw(data_dir) / "MNIST" / "raw"), "--limit", "400",
                           *flags], cwd=out, capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ""}).stdout


@pytest.mark.filterwarnings("ignore:bf16 autocast on a CPU without native bf16")  # expected
def test_bf16_search_exports_and_checks_in_bf16(capsys, tmp_path, data_dir):
    """Trained in bf16 autocast (--bf16, emulated where the CPU lacks it): the export is
    checked in bf16, to the image, and is close in fp32; model.py --bf16 agrees on its own."""
    rc, _, err = nas(capsys, "search", "--study", "b", "--trials", "1", "--bf16",
                     "--results-dir", str(tmp_path), *TINY, "--race-top", "0", "--rungs",
                     "none", "--epochs", "1", "--max-params", "2000", "--train-limit", "200")
    # one small training: bf16 may be emulated here, 5x slower than fp32
    assert rc == 0, err
    from nas.studyio import load_study

    t = load_study(tmp_path, "b").trials[0]
    assert t.user_attrs["train_config"]["bf16"] is True
    out = tmp_path / "e"
    rc, _, err = nas(capsys, "export", "b", "--results-dir", str(tmp_path), "--out", str(out))
    assert rc == 0, err
    r = json.loads((out / "export.json").read_text())
    assert r["checked_in"] == "bf16" and r["exported_correct"] == r["recorded_correct"]
    assert abs(r["exported_correct_fp32"] - r["recorded_correct"]) <= 0.02 * r["n_test"]
    # (export ran model.py in fp32 too, in a fresh process: exported_correct_fp32)
    assert f"({r['recorded_correct']}/400)" in standalone(out, data_dir, "--bf16")


@pytest.mark.filterwarnings("ignore:bf16 autocast on a CPU without native bf16")  # expected
def test_export_of_an_auto_bf16_verify_run_checks_in_bf16(capsys, tmp_path, monkeypatch):
    """A preset with bf16 "auto" (None), verified where bf16 is native, was measured in bf16:
    its export is checked in bf16 too (it was checked in fp32, and `auto2k` missed by an
    image), while preset.json keeps "auto" for machines without native bf16."""
    from nas import runs

    monkeypatch.setenv("NAS_NATIVE_BF16", "1")  # auto resolves to bf16 on any machine
    orig = runs.train
    monkeypatch.setattr(runs, "train", lambda *a, **kw: orig(
        *a, **{**kw, "train_limit": 600, "eval_limit": 300}))
    rc, _, err = nas(capsys, "verify", "--preset", "auto2k", "--seeds", "0", "--epochs", "1",
                     "--results-dir", str(tmp_path), "--name", "a", "--no-progress")
    assert rc == 0, err
    d = tmp_path / "verify" / "a"
    assert json.loads((d / "verify.json").read_text())["train_config"]["bf16"] is None
    assert json.loads((d / "train_config.json").read_text())["bf16"] is True
    out = tmp_path / "ea"
    rc, _, err = nas(capsys, "export", "--verify", "a", "--results-dir", str(tmp_path),
                     "--out", str(out))
    assert rc == 0, err
    r = json.loads((out / "export.json").read_text())
    assert r["checked_in"] == "bf16" and r["exported_correct"] == r["recorded_correct"]
    assert json.loads((out / "preset.json").read_text())["train"]["bf16"] is None


def test_study_without_completed_trial(capsys, tmp_path):
    rc, _, _ = nas(capsys, "search", "--study", "none", "--trials", "1", "--max-params", "100",
                   "--max-rejections", "5", "--results-dir", str(tmp_path), *TINY)
    assert rc == 2
    rc, _, err = nas(capsys, "export", "none", "--results-dir", str(tmp_path), "--out",
                     str(tmp_path / "o"))
    assert rc == 2 and "no completed trial" in err
    rc, _, err = nas(capsys, "verify", "none", "--results-dir", str(tmp_path))
    assert rc == 2 and "no completed trial" in err


def test_verify_a_trial(capsys, results, monkeypatch):
    from nas import runs

    orig = runs.train
    monkeypatch.setattr(runs, "train", lambda *a, **kw: orig(
        *a, **{**kw, "train_limit": 800, "eval_limit": 300}))
    rc, out, err = nas(capsys, "verify", "s", "--seeds", "0,1,2", "--epochs", "1",
                       "--results-dir", str(results), "--no-progress")
    assert rc == 0, err
    v = json.loads(next((results / "verify").glob("*/verify.json")).read_text())
    assert set(v["per_seed"]) == {"0", "1", "2"} and len(v["ci95"]) == 2
    assert v["final_min"] <= v["final_mean"] and "reached_99_4" in v
    assert "95% CI" in out


def test_export_a_verified_seed(capsys, results, tmp_path):
    """After test_verify_a_trial: seed 1's 60,000-image weights, checked to the image."""
    name = next((results / "verify").glob("*/verify.json")).parent.name
    out = tmp_path / "ev"
    rc, text, err = nas(capsys, "export", "--verify", name, "--seed", "1", "--results-dir",
                        str(results), "--out", str(out))
    assert rc == 0, err
    r = json.loads((out / "export.json").read_text())
    assert r["seed"] == 1 and r["n_test"] == 300 and r["exported_correct"] == r["recorded_correct"]
    v = json.loads((out / "verify.json").read_text())
    assert r["recorded_test_acc"] == v["per_seed"]["1"]["final_acc"]
    assert json.loads((out / "preset.json").read_text())["source"]["seed"] == 1
    seed_weights = results / "verify" / name / "weights_seed1.pt"
    import torch

    a, b = torch.load(out / "weights.pt"), torch.load(seed_weights)
    assert all(torch.equal(a[k], b[k]) for k in b)
    rc, _, err = nas(capsys, "export", "--verify", name, "--seed", "7", "--results-dir",
                     str(results), "--out", str(tmp_path / "e7"))
    assert rc == 2 and "not 7" in err
    rc, _, err = nas(capsys, "export", "s", "--verify", name, "--results-dir", str(results),
                     "--out", str(tmp_path / "e8"))
    assert rc == 2 and "either a STUDY or --verify" in err


def test_results_table(capsys, results):
    """After test_verify_a_trial: one row per verify run, with its seeds and finals."""
    rc, out, err = nas(capsys, "results", "--results-dir", str(results))
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("| name | params") and len(lines) == 3
    assert "±" in lines[2] and (results / "verify" / "table.md").read_text().strip() == out.strip()
    min_cell = lines[2].split("|")[6].strip()
    assert len(min_cell.split(".")[1]) == 2, min_cell  # 99.50, not 99.5
    rc, _, err = nas(capsys, "results", "--results-dir", str(results / "nothing"))
    assert rc == 2 and "no verify runs" in err


def test_export_onnx_and_int8(capsys, results, tmp_path):
    """model.onnx takes uint8 images and agrees with PyTorch; int8 is ONNX Runtime's own
    static quantization, checked on the same test images."""
    pytest.importorskip("onnxruntime")
    out = tmp_path / "onnx"
    rc, text, err = nas(capsys, "export", "s", "--results-dir", str(results), "--out", str(out),
                        "--int8")
    assert rc == 0, err
    d = json.loads((out / "export.json").read_text())["deploy"]
    assert (out / "model.onnx").is_file() and (out / "model.int8.onnx").is_file()
    assert d["onnx_differ_from_torch"] <= 2 and d["n_test"] == 400
    assert abs(d["int8_acc"] - d["onnx_acc"]) < 5 and d["int8_calibration"] == "percentile"
    assert d["int8_weight_bytes"] < d["onnx_weight_bytes"] / 2  # int8, not float, weights
    assert "model.int8.onnx" in text
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].type == "tensor(uint8)"  # normalization is inside the graph
    logits = sess.run(None, {"images": np.zeros((3, 1, 28, 28), np.uint8)})[0]
    assert logits.shape == (3, 10)


def test_quantize_int8_settings(tmp_path):
    """The calibration is ORT's, by name; bn_float leaves an unfolded BN (ReLU before it) in
    float, where ORT would quantize its scale per tensor; a wrong name is one line."""
    pytest.importorskip("onnxruntime")
    import numpy as np
    import onnx

    from nas.build import build
    from nas.data import MNIST_INFO
    from nas.deploy import Deployable, export_onnx, quantize_int8
    from nas.errors import NasError
    from nas.spec import ArchSpec

    spec = ArchSpec.from_dict({"layers": [
        {"type": "conv", "out": 4, "k": 3, "pad": 1, "bias": False}, {"type": "relu"},
        {"type": "bn"}, {"type": "gap"}, {"type": "conv", "out": 10, "k": 1}]})
    fp32 = export_onnx(Deployable(build(spec).eval(), MNIST_INFO.mean, MNIST_INFO.std),
                       MNIST_INFO.shape, tmp_path / "m.onnx")
    calib = np.random.default_rng(0).integers(0, 255, (200, 1, 28, 28), dtype=np.uint8)

    def bn_scale_quantized(path):
        g = onnx.load(str(path)).graph
        bn = next(n for n in g.node if n.op_type == "BatchNormalization")
        return any(n.op_type == "DequantizeLinear" and bn.input[1] in n.output for n in g.node)

    assert bn_scale_quantized(quantize_int8(fp32, calib, tmp_path / "p.onnx"))
    assert not bn_scale_quantized(quantize_int8(fp32, calib, tmp_path / "f.onnx", "minmax",
                                                bn_float=True))
    with pytest.raises(NasError, match="unknown calibration 'entropy'"):
        quantize_int8(fp32, calib, tmp_path / "e.onnx", "entropy")


def test_separable_net_deploys(tmp_path):
    """A depthwise conv goes through model.py's source, ONNX (BN folded) and int8 unchanged."""
    pytest.importorskip("onnxruntime")
    import numpy as np
    import torch

    from nas.build import build
    from nas.data import MNIST_INFO
    from nas.deploy import Deployable, export_onnx, onnx_predict, quantize_int8
    from nas.export import render_model
    from nas.spec import GAP, ArchSpec, Conv, DWConv, MaxPool, conv_block

    spec = ArchSpec(layers=(*conv_block(6, 3, 1), DWConv(3, 1), *conv_block(24, 1), MaxPool(2),
                            DWConv(3), *conv_block(12, 1), GAP(), Conv(10, 1)))
    torch.manual_seed(0)
    net = build(spec).eval()
    for m in net.modules():  # BN statistics that folding must carry over
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    (tmp_path / "model.py").write_text(render_model(spec, "t"))
    scope: dict = {"__file__": str(tmp_path / "model.py")}
    exec(compile((tmp_path / "model.py").read_text(), "model.py", "exec"), scope)
    again = scope["Net"]()
    again.load_state_dict(net.state_dict())  # same module names and shapes as the tool's
    images = np.random.default_rng(0).integers(0, 255, (64, 28, 28), dtype=np.uint8)
    with torch.no_grad():
        want = scope["predict"](again, torch.from_numpy(images))
    wrapped = Deployable(net, MNIST_INFO.mean, MNIST_INFO.std)
    fp32 = export_onnx(wrapped, MNIST_INFO.shape, tmp_path / "m.onnx")
    got = onnx_predict(fp32, images[:, None])
    assert (got == want.numpy()).mean() >= 0.98  # folding moves a logit by float rounding
    int8 = quantize_int8(fp32, images[:, None], tmp_path / "q.onnx")
    assert onnx_predict(int8, images[:, None]).shape == (64,)


@pytest.mark.slow
def test_export_onnx_with_the_dynamo_exporter(capsys, results, tmp_path, monkeypatch):
    """The exporter used where PyTorch has dropped the TorchScript one: same checks."""
    pytest.importorskip("onnxscript")
    monkeypatch.setenv("NAS_ONNX_DYNAMO", "1")
    out = tmp_path / "dyn"
    rc, _, err = nas(capsys, "export", "s", "--results-dir", str(results), "--out", str(out),
                     "--int8")
    assert rc == 0, err
    d = json.loads((out / "export.json").read_text())["deploy"]
    assert d["onnx_differ_from_torch"] <= 2 and abs(d["int8_acc"] - d["onnx_acc"]) < 5
    import onnx

    names = [n.name for n in onnx.load(str(out / "model.onnx")).graph.node]
    assert all(n.startswith("node_") for n in names)  # dynamo's names; TorchScript's are /Div


def test_archive_keeps_a_readable_read_only_study(capsys, results, tmp_path, data_dir):
    """nas archive --into: moved with its log (gzipped), journal gzipped (torn last record
    dropped), only the winner's weights kept with --keep-weights 0; report and export read it
    as before, and a search cannot add to it."""
    from nas.plots import plotly_src
    from nas.studyio import load_study

    root = tmp_path / "results"
    shutil.copytree(results / "s", root / "s")
    (root / "s.log").write_text("the search's log\n")
    plotly_src(root / "page.html", root)  # results/plotly.min.js, as any report leaves it
    before = load_study(root, "s").trials
    with (root / "s" / "journal.log").open("ab") as f:
        f.write(b'{"op_code": 5, "worker_id"')  # a crash mid-write: Optuna skips it
    winner = json.loads((root / "s" / "study.json").read_text())["winner"]["trial"]
    rc, out, err = nas(capsys, "archive", "s", "--into", str(root / "old"), "--keep-weights",
                       "0", "--results-dir", str(root))
    assert rc == 0, err
    d = root / "old" / "s"
    assert not (root / "s").exists() and not (d / "journal.log").exists()
    assert gzip.decompress((d / "search.log.gz").read_bytes()) == b"the search's log\n"
    assert not (d / "search.log").exists()
    assert "a torn last record dropped" in out
    assert [p.name for p in (d / "trials").glob("*.pt")] == [f"{winner:04d}.pt"]
    after = load_study(root / "old", "s").trials
    assert [(t.number, t.state, t.values, t.user_attrs) for t in after] == \
        [(t.number, t.state, t.values, t.user_attrs) for t in before]
    assert (d / "journal.log.gz").stat().st_size < (results / "s" / "journal.log").stat().st_size
    rc, _, err = nas(capsys, "report", "s", "--results-dir", str(root / "old"))
    assert rc == 0, err
    page = (d / "report.html").read_text()  # the results root's one plotly.min.js, not a copy
    assert '<script src="../../plotly.min.js">' in page and not (root / "old" / "plotly.min.js"
                                                                  ).exists()
    rc, _, err = nas(capsys, "export", "s", "--trial", "winner", "--results-dir",
                     str(root / "old"), "--out", str(tmp_path / "e"))
    assert rc == 0, err
    # archived again in place (as when --keep-weights' default went from 10 to 3): still readable
    rc, out, err = nas(capsys, "archive", "s", "--results-dir", str(root / "old"))
    assert rc == 0 and "journal gzipped already" in out, (out, err)
    assert (d / "trials" / f"{winner:04d}.pt").is_file()
    assert len(load_study(root / "old", "s").trials) == len(before)
    rc, _, err = nas(capsys, "search", "--study", "s", "--trials", "5", "--results-dir",
                     str(root / "old"), "--max-params", "6000", "--enqueue", "baseline",
                     "--no-scale-to-fit", "--no-bf16", *TINY)  # the study's own settings
    assert rc == 2 and "archived study (read-only)" in err and "gunzip" in err
    assert len(load_study(root / "old", "s").trials) == len(before)
    rc, _, err = nas(capsys, "archive", "s", "--results-dir", str(root / "old"))
    assert rc == 0, err  # again, in place: nothing left to do, nothing broken
    rc, _, err = nas(capsys, "archive", "nope", "--results-dir", str(root))
    assert rc == 2 and "unknown study 'nope'" in err


def test_archive_keeps_the_winner_not_the_races_runners_up():
    """The race's runners-up retrain from their spec like any trial: their weights are not
    kept (a committed proof must fit a 20 MB clone). The winner always is, even when the
    search's single seed ranked it below others; then the best by validation, --keep-weights."""
    import optuna

    from nas.archive import kept_trials

    st = optuna.create_study(direction="maximize")
    for v in (90.0, 91.5, 91.0, 91.2, 89.0):
        st.tell(st.ask(), v)
    race = [{"trial": 1}, {"trial": 3}, {"trial": 2}]
    meta = {"winner": {"trial": 3}, "race": race}
    assert kept_trials(st, meta, 0) == {3}
    assert kept_trials(st, meta, 1) == {3, 1}
    assert kept_trials(st, meta, 2) == {3, 1}  # 1 then 3 by validation
    assert kept_trials(st, {}, 1) == {1}  # no race yet: the best by validation


def test_archive_refuses_a_corrupt_journal(capsys, results, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(results / "s", root / "s")
    journal = root / "s" / "journal.log"
    lines = journal.read_bytes().split(b"\n")
    journal.write_bytes(b"\n".join(lines[:3] + [b"{not json"] + lines[3:]))
    rc, _, err = nas(capsys, "archive", "s", "--results-dir", str(root))
    assert rc == 2 and "line 4 is not a valid record" in err
    assert journal.exists() and not (root / "s" / "journal.log.gz").exists()


def test_dashboard_serves_the_study(capsys, results, tmp_path):
    """nas dashboard: optuna-dashboard on the study's journal, and on its archive."""
    pytest.importorskip("optuna_dashboard")
    import os
    import signal
    import socket
    import time
    import urllib.request

    root = tmp_path / "results"
    shutil.copytree(results / "s", root / "s")
    assert nas(capsys, "archive", "s", "--into", str(root / "old"),
               "--results-dir", str(root))[0] == 0
    for where in (results, root / "old"):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "nas.cli", "dashboard", "s", "--port",
                                 str(port), "--results-dir", str(where)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            body, deadline = None, time.monotonic() + 60
            while body is None and time.monotonic() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies",
                                                timeout=5) as r:
                        body = json.loads(r.read())
                except OSError:
                    time.sleep(0.3)
            assert body is not None, proc.stderr.read() if proc.poll() is not None else "timeout"
            studies = {s["study_name"]: s for s in body["study_summaries"]}
            assert "s" in studies
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.communicate(timeout=30)  # reaps it and closes its pipes
    rc, _, err = nas(capsys, "dashboard", "nope", "--results-dir", str(results))
    assert rc == 2 and "unknown study 'nope'" in err


def test_report_summarizes_the_race_and_says_when_it_was_a_coin_toss():
    """`nas report` prints the race from study.json: every finalist's fresh seeds, the winner,
    and its lead against the race's noise (pooled over the finalists with repeats: here
    sqrt((0.005 + 0.00005) / 2) = 0.050), computed for studies raced before it was recorded."""
    from nas.study_report import race_summary

    race = [{"trial": 19, "n_params": 7780, "search_val": 99.26, "race_vals": [99.26, 99.27],
             "mean": 99.265, "std": 0.007},
            {"trial": 22, "n_params": 7705, "search_val": 99.2, "race_vals": [99.33, 99.23],
             "mean": 99.28, "std": 0.071},
            {"trial": 17, "n_params": 7788, "search_val": 99.25, "race_vals": [],
             "mean": float("nan"), "std": 0.0}]
    meta = {"winner": {**race[1], "rule": "best mean"}, "race": race}
    text = race_summary(meta).splitlines()
    assert text[1].startswith("  trial 22 (7,705 params): search val 99.20%, fresh seeds 99.28")
    assert text[2].startswith("  trial 19") and "trial 17" in text[3] and "no run" in text[3]
    assert text[-1] == ("winner: trial 22 (7,705 params); it leads trial 19 by 0.015 points, "
                        "standard error 0.050: level on validation, the pick is close to a "
                        "coin toss")
    meta["winner"]["margin"] = {"runner_up": 19, "lead": 0.3, "se": 0.02, "level": False}
    assert race_summary(meta).endswith("standard error 0.020: a clear lead")
    assert race_summary({}) == ""
