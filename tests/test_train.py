import dataclasses

import pytest
import torch

from nas.errors import NasError
from nas.presets import get_preset
from nas.train import TrainConfig, ema_avg_fn, evaluate, summarize, train

SMALL = dict(train_limit=1500, eval_limit=500, progress=False)


def test_history_and_same_seed_same_result(mnist):
    p = get_preset("baseline")
    cfg = dataclasses.replace(p.train, epochs=2, rotate_deg=7.0)
    a = train(p.spec, cfg, mnist, seed=3, **SMALL)
    b = train(p.spec, cfg, mnist, seed=3, **SMALL)
    assert len(a.history) == 2 and a.stop_reason is None
    assert set(a.history[0]) >= {"epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                                 "test_loss", "test_acc", "lr", "time_s"}
    assert [r["test_acc"] for r in a.history] == [r["test_acc"] for r in b.history]
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(),
                                                  b.model.state_dict().values(), strict=True))
    c = train(p.spec, cfg, mnist, seed=4, **SMALL)
    assert c.history[-1]["train_loss"] != a.history[-1]["train_loss"]


def test_learns_something(mnist):
    p = get_preset("baseline")
    res = train(p.spec, dataclasses.replace(p.train, epochs=2), mnist, seed=0,
                train_limit=6000, eval_limit=1000, progress=False)
    assert res.history[-1]["test_acc"] > 80


def test_callback_stops(mnist):
    p = get_preset("ref7918")
    res = train(p.spec, dataclasses.replace(p.train, epochs=5), mnist,
                callback=lambda r: r["epoch"] == 2, **SMALL)
    assert len(res.history) == 2 and "callback" in res.stop_reason


def test_non_finite_loss_stops_without_crash(mnist):
    p = get_preset("batch1")
    spec = get_preset("ref7070").spec  # no head BN after the last conv: blows up at huge LR
    cfg = TrainConfig(epochs=3, lr=1e12, schedule="constant", optimizer="sgd")
    res = train(spec, cfg, mnist, **SMALL)
    assert res.stop_reason and "non-finite" in res.stop_reason
    assert len(res.history) < 3
    del p


def test_summarize():
    h = {0: [{"epoch": 1, "test_acc": 99.0, "train_s": 1.0},
             {"epoch": 2, "test_acc": 98.0, "train_s": 1.0}],
         1: [{"epoch": 1, "test_acc": 97.0, "train_s": 1.0},
             {"epoch": 2, "test_acc": 99.0, "train_s": 1.0}]}
    s = summarize(h)
    assert s["per_seed"][0]["best_epoch"] == 1 and s["per_seed"][0]["final_acc"] == 98.0
    assert s["final_mean"] == pytest.approx(98.5) and s["final_min"] == 98.0
    assert s["final_std"] == pytest.approx(0.7071, abs=1e-3)


@pytest.mark.parametrize("kw", [dict(epochs=0), dict(optimizer="lbfgs"), dict(schedule="cos"),
                                dict(ema=1.0), dict(ema=-0.1)])
def test_bad_config(kw):
    with pytest.raises(NasError):
        TrainConfig(**kw).validate()


def test_ema_update_warms_up_then_uses_the_decay():
    from torch.optim.swa_utils import AveragedModel

    net = torch.nn.Linear(1, 1, bias=False)
    ema = AveragedModel(net, multi_avg_fn=ema_avg_fn(0.9), use_buffers=True)
    expected = []
    for n in range(30):
        with torch.no_grad():
            net.weight.fill_(float(n))
        ema.update_parameters(net)
        d = min(0.9, (1 + n) / (10 + n))  # n updates averaged before this one
        expected.append(0.0 if n == 0 else d * expected[-1] + (1 - d) * n)
    assert ema.module.weight.item() == pytest.approx(expected[-1], rel=1e-5)
    assert 18 < expected[-1] < 29  # lags the raw weight (29) by about 1/(1-decay) updates


def test_ema_run_ships_the_average_and_reports_both(mnist):
    p = get_preset("ref7918")
    cfg = dataclasses.replace(p.train, epochs=2, ema=0.99)
    res = train(p.spec, cfg, mnist, seed=0, **SMALL)
    last = res.history[-1]
    assert {"val_acc_raw", "test_acc_raw"} <= set(last)
    # the returned model is the average: evaluating it again gives the recorded accuracy
    assert evaluate(res.model, mnist.test.head(500), res.config)[1] == pytest.approx(
        last["test_acc"])
    raw = train(p.spec, dataclasses.replace(cfg, ema=0.0), mnist, seed=0, **SMALL)
    # the EMA does not touch the optimisation: raw weights follow the run without it
    assert last["test_acc_raw"] == pytest.approx(raw.history[-1]["test_acc"])
    assert not all(torch.equal(a, b) for a, b in zip(res.model.state_dict().values(),
                                                     raw.model.state_dict().values(), strict=True))


@pytest.mark.parametrize("name,ema", [("batch3", 0.0), ("best8k", 0.9)])  # dropout; EMA
def test_checkpoint_resume_ends_as_an_unbroken_run(mnist, tmp_path, name, ema):
    """Killed after epoch 2 of 3 and started again: the same weights and history, bit for bit."""
    p = get_preset(name)
    small = {**SMALL, "train_limit": 640}  # bit for bit needs no more than 20 steps an epoch
    cfg = dataclasses.replace(p.train, epochs=3, rotate_deg=7.0, ema=ema, step_size=1)
    whole = train(p.spec, cfg, mnist, seed=5, **small)
    ckpt = tmp_path / "ckpt.pt"
    cut = train(p.spec, cfg, mnist, seed=5, checkpoint=ckpt, callback=lambda r: r["epoch"] == 2,
                **small)
    assert len(cut.history) == 2 and ckpt.is_file()
    again = train(p.spec, cfg, mnist, seed=5, checkpoint=ckpt, **small)
    drop = ("time_s", "train_s")
    assert [{k: v for k, v in r.items() if k not in drop} for r in again.history] == \
           [{k: v for k, v in r.items() if k not in drop} for r in whole.history]
    assert all(torch.equal(x, y) for x, y in zip(again.model.state_dict().values(),
                                                  whole.model.state_dict().values(), strict=True))
    with pytest.raises(NasError, match="belongs to another run .*seed"):
        train(p.spec, cfg, mnist, seed=6, checkpoint=ckpt, **small)


def test_bf16_without_native_support_says_so(mnist, monkeypatch):
    import nas.train

    p = get_preset("ref7070")
    cfg = dataclasses.replace(p.train, epochs=1, bf16=True)
    monkeypatch.setattr(nas.train, "native_bf16", lambda device: False)
    with pytest.warns(UserWarning, match="without native bf16.*--no-bf16"):
        train(p.spec, cfg, mnist, train_limit=256, eval_limit=256, progress=False)


@pytest.mark.parametrize("native", ["0", "1"])
def test_precision_auto_follows_the_hardware_and_is_recorded(mnist, monkeypatch, native):
    """bf16=None (the default) is bf16 only where native; NAS_NATIVE_BF16 stands in for the
    hardware, so both paths run on any machine; the run says what it used."""
    import warnings

    monkeypatch.setenv("NAS_NATIVE_BF16", native)
    p = get_preset("ref7070")
    assert p.train.bf16 is None
    cfg = dataclasses.replace(p.train, epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto never picks emulated bf16, so never warns
        res = train(p.spec, cfg, mnist, train_limit=256, eval_limit=256, progress=False)
    assert res.config.bf16 is (native == "1")


def test_piecewise_schedule_and_progress(mnist):
    p = get_preset("ref3762")
    cfg = dataclasses.replace(p.train, epochs=3)
    seen = []
    res = train(p.spec, cfg, mnist, train_limit=320, eval_limit=200, progress=False,
                on_progress=seen.append)
    # lr set per epoch from the knots stretched to 3 epochs: 0.05, then 15/3 x further along
    assert [r["lr"] for r in res.history] == pytest.approx(
        [0.05, 0.1 * (0.1 + 0.9 * (8 - 5) / 6), 0.1 * 0.1 * (15 - 10) / 7])
    ends = [i for i in seen if i["step"] == i["steps"]]
    assert [i["epoch"] for i in ends] == [1, 2, 3] and ends[-1]["eta_s"] == 0
    assert all(i["images_per_s"] > 0 for i in seen)


def _stepped(opt, sched, steps: int, key: str) -> list[float]:
    """The optimizer's ``key`` (lr, momentum) at each of ``steps`` steps of its schedule."""
    seen = []
    for _ in range(steps):
        seen.append(opt.param_groups[0][key])
        opt.step()
        sched.step()
    return seen


def test_onecycle_keeps_plain_sgd_plain_and_cycles_around_the_momentum():
    from nas.train import make_optimizer

    net = torch.nn.Linear(2, 2)
    for momentum, lo, hi in ((0.0, 0.0, 0.0), (0.9, 0.85, 0.95), (0.5, 0.45, 0.55)):
        cfg = TrainConfig(optimizer="sgd", momentum=momentum, schedule="onecycle", epochs=2)
        seen = _stepped(*make_optimizer(net, cfg, 10)[:2], 20, "momentum")
        assert min(seen) == pytest.approx(lo) and max(seen) == pytest.approx(hi)
    with pytest.raises(NasError, match="use momentum 0 or"):
        TrainConfig(optimizer="sgd", momentum=0.01, schedule="onecycle").validate()


def test_onecycle_with_a_one_step_warm_up_runs():
    """4 steps at pct_start 0.25 made torch divide by zero (a 1-epoch rung of 4 batches);
    its warm-up ends at step 0, so that is the peak, and the lr anneals from there."""
    from nas.train import make_optimizer

    net = torch.nn.Linear(2, 2)
    cfg = TrainConfig(optimizer="adam", lr=0.01, schedule="onecycle", epochs=1, pct_start=0.25)
    lrs = _stepped(*make_optimizer(net, cfg, 4)[:2], 4, "lr")
    assert lrs[0] == pytest.approx(0.01, rel=1e-4)
    assert lrs[0] > lrs[1] > lrs[2] > lrs[3] > 0


def test_eval_batch_size_changes_no_result(mnist):
    # only speed: the default (256) and the old 2000 give the same accuracy and, to float
    # rounding, the same loss on a trained net
    p = get_preset("baseline")
    res = train(p.spec, dataclasses.replace(p.train, epochs=1), mnist, seed=0,
                train_limit=6000, eval_limit=100, progress=False)
    split = mnist.test.head(2000)
    small = evaluate(res.model, split, dataclasses.replace(p.train, eval_batch_size=256))
    large = evaluate(res.model, split, dataclasses.replace(p.train, eval_batch_size=2000))
    assert TrainConfig().eval_batch_size == 256
    assert small[1] == large[1] and 20 < small[1] < 100  # a net past chance
    assert small[0] == pytest.approx(large[0], rel=1e-5)
