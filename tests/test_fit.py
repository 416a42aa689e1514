"""Scaling a drawn net down to its budget (nas/fit.py) and the search's use of it."""

from __future__ import annotations

import json

import optuna
import pytest

from nas.config import SearchConfig
from nas.errors import NasError
from nas.fit import MIN_WIDTH, fit_to_budgets, scale_widths
from nas.presets import get_preset
from nas.spaces import get_space
from nas.spec import Conv, Linear, SpecError, analyze


def params_budget(limit: int) -> dict:
    return SearchConfig(study="x", max_params=limit).budgets()


def widths(spec) -> list[int]:
    return [layer.out for layer in spec.layers if isinstance(layer, Conv | Linear)]


def test_scale_widths_keeps_the_logits_and_a_floor():
    spec = get_preset("baseline").spec  # 8 16 | 8 16 16 16 | 10 (the 1x1 head conv)
    assert widths(spec)[-1] == 10
    half = scale_widths(spec, 0.5)
    assert widths(half) == [max(min(w, MIN_WIDTH), round(w * 0.5)) for w in widths(spec)[:-1]
                            ] + [10]
    assert widths(scale_widths(spec, 0.0)) == [MIN_WIDTH] * (len(widths(spec)) - 1) + [10]
    assert scale_widths(spec, 1.0) == spec
    # a linear head is the logits layer too: every conv before it scales
    lin = get_preset("general8k").spec
    assert widths(scale_widths(lin, 0.0))[-1] == widths(lin)[-1]


@pytest.mark.parametrize("limit", [2000, 4000, 5000, 7000])
def test_fit_is_the_widest_that_fits(limit):
    spec = get_preset("baseline").spec  # 7,416 params
    fitted, f = fit_to_budgets(spec, params_budget(limit))
    n = analyze(fitted).n_params
    assert n < limit and f < 1
    # the next step up the bisection's grid is over the budget (rounding may make a wider
    # factor fit again further up, but not the one right above)
    assert analyze(scale_widths(spec, f + 2**-15)).n_params >= limit or f + 2**-15 >= 1
    # same shape: layer kinds and order, kernel sizes, pads
    assert [type(a) for a in fitted.layers] == [type(b) for b in spec.layers]
    assert all(a.k == b.k and a.pad == b.pad for a, b in zip(fitted.layers, spec.layers,
                                                            strict=True) if isinstance(a, Conv))


def test_fit_leaves_a_net_that_fits_alone_and_gives_up_below_the_floor():
    spec = get_preset("baseline").spec
    assert fit_to_budgets(spec, params_budget(8000)) == (spec, 1.0)
    assert fit_to_budgets(spec, params_budget(300)) is None  # 4 channels everywhere is more


def test_fit_serves_every_budget_at_once():
    spec = get_preset("baseline").spec
    info = analyze(spec)
    budgets = SearchConfig(study="x", max_params=None, max_macs=info.macs // 2,
                           max_int8_kb=info.int8_bytes / 1000 * 0.8).budgets()
    fitted, _ = fit_to_budgets(spec, budgets)
    got = analyze(fitted)
    assert got.macs < info.macs // 2 and got.int8_bytes / 1000 < info.int8_bytes / 1000 * 0.8


def convs(spec) -> int:
    return sum(isinstance(layer, Conv) and layer.k == 3 for layer in spec.layers)


def test_deep_draws_train_under_a_small_budget():
    """Why it exists: under 4,000 parameters the general space's deep draws (7+ 3x3 convs) were
    almost all over the budget; scaled, every one of them trains."""
    space = get_space("general")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.set_user_attr("max_params", 4000)
    deep = fit_as_drawn = fit_scaled = 0
    for _ in range(300):
        trial = study.ask()
        spec, _ = space.sample(trial)
        study.tell(trial, 0.0)
        try:
            n = analyze(spec).n_params
        except SpecError:
            continue
        if convs(spec) < 7:
            continue
        deep += 1
        fit_as_drawn += n < 4000
        fitted = fit_to_budgets(spec, params_budget(4000))
        fit_scaled += fitted is not None and analyze(fitted[0]).n_params < 4000
    assert deep >= 30
    assert fit_as_drawn <= deep // 3  # most deep draws are over 4,000 as drawn
    assert fit_scaled == deep  # and all of them fit once scaled


def test_search_trains_an_over_budget_draw_narrower(capsys, tmp_path):
    from procs import TINY

    from nas.cli import main
    from nas.studyio import load_study

    rc = main(["search", "--study", "s", "--trials", "1", "--max-params", "5000",
               "--enqueue", "baseline", "--results-dir", str(tmp_path), *TINY])
    out, err = capsys.readouterr()
    assert rc == 0, err
    base = load_study(tmp_path, "s").trials[0]
    ua = base.user_attrs
    assert ua["enqueued"] == "baseline" and ua["drawn_n_params"] == 7416
    assert 4500 < ua["n_params"] < 5000 and 0.5 < ua["scaled"] < 1
    assert base.constraints["params"] <= 0 and "rungs" in ua  # feasible, and trained
    assert base.params["s2_w1"] == 16  # the trial keeps what was drawn
    assert f"drawn with 7,416 and scaled x{ua['scaled']:.2f}" in out
    assert "1 scaled down to fit" in out
    study_json = json.loads((tmp_path / "s" / "study.json").read_text())
    assert study_json["settings"]["scale_to_fit"] is True


def test_a_study_from_before_resumes_only_without_scaling(tmp_path):
    """Studies made before scaling existed rejected their over-budget draws: resuming one
    with scaling would change it halfway, so it is refused in one line."""
    from nas.search import _check_resume

    cfg = SearchConfig(study="old", space="general", results_dir=str(tmp_path))
    space = get_space(cfg.space)
    settings = {**cfg.settings(), "space_version": space.version,
                "space_hash": space.fingerprint()}
    del settings["scale_to_fit"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "study.json").write_text(json.dumps({"settings": settings}))
    with pytest.raises(NasError, match="--scale-to-fit"):
        _check_resume(cfg, tmp_path / "old", space)
    _check_resume(SearchConfig(study="old", space="general", results_dir=str(tmp_path),
                               scale_to_fit=False),
                  tmp_path / "old", space)
