"""The built-in spaces: the known designs they can express, and the spread of sizes they cover."""

from __future__ import annotations

import dataclasses

import optuna
import pytest

from nas.errors import NasError
from nas.presets import get_preset
from nas.spaces import get_space, list_spaces, resolve_space
from nas.spec import SpecError, analyze


def test_known_baseline_is_the_preset():
    space = get_space("mnist_8k")
    spec, cfg = space.sample(optuna.trial.FixedTrial(space.known["baseline"]))
    preset = get_preset("baseline")
    assert spec == preset.spec
    # the search sets epochs itself; everything else in the recipe must match
    assert dataclasses.replace(cfg, epochs=preset.train.epochs) == preset.train


@pytest.mark.parametrize("space_name", ["general", "separable"])
@pytest.mark.parametrize("name", ["batch3", "baseline", "ref7918", "ref7070", "ref3762",
                                  "best8k", "best5k"])
def test_general_space_holds_every_known_design(name, space_name):
    """Each design we know of is one point of the default space: net and recipe, exactly."""
    space = get_space(space_name)
    spec, cfg = space.sample(optuna.trial.FixedTrial(space.known[name]))
    preset = get_preset(name)
    assert spec == preset.spec
    assert cfg == preset.train


@pytest.mark.parametrize("budget,hi", [(2000, 2000), (4000, 4000), (8000, 8000)])
def test_general_space_adapts_to_the_budget(budget, hi):
    """--max-params alone adapts it: a fair share of random nets fit each budget."""
    space = get_space("general")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.set_user_attr("max_params", budget)
    fits = 0
    for _ in range(200):
        trial = study.ask()
        spec, cfg = space.sample(trial)
        cfg.validate()
        try:  # deep unpadded stages can shrink the map below 3x3: rejected in the search
            fits += analyze(spec).n_params < hi
        except SpecError:
            pass
        study.tell(trial, 0.0)
    assert fits >= 30, f"{fits}/200 random nets under {budget:,}"


def sampled(name: str, n: int, seed: int) -> list:
    """n (spec, cfg) pairs from a space under Optuna's random sampler."""
    space = get_space(name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(space.sample(trial))
        study.tell(trial, 0.0)
    return out


@pytest.mark.parametrize("name", list_spaces())
def test_spaces_sample_valid_specs(name):
    sizes, impossible = [], 0
    for spec, cfg in sampled(name, 200, seed=0):
        cfg.validate()
        try:
            sizes.append(analyze(spec).n_params)
        except SpecError:
            impossible += 1
    assert impossible <= (40 if name in ("general", "separable") else 0)
    if name == "mnist_8k":  # one space for the 8k search and the frontier below it
        assert min(sizes) < 2000 and sum(s < 8000 for s in sizes) > 150


def test_ref_space_known_is_ref7918():
    space = get_space("mnist_8k_ref")
    spec, cfg = space.sample(optuna.trial.FixedTrial(space.known["ref7918"]))
    preset = get_preset("ref7918")
    assert spec == preset.spec
    # same recipe, except the space's augmentation resamples bilinearly
    assert dataclasses.replace(cfg, epochs=preset.train.epochs, interp="nearest") == preset.train


def test_oc_space_known_is_found7k2_without_ema():
    space = get_space("mnist_8k_oc")
    spec, cfg = space.sample(optuna.trial.FixedTrial(space.known["found7k2"]))
    preset = get_preset("found7k2")
    assert spec == preset.spec
    # found7k2 was searched with --bf16 (kept in its recipe) and EMA 0.99, which this space drops
    assert dataclasses.replace(cfg, epochs=preset.train.epochs, bf16=preset.train.bf16,
                               channels_last=True, ema=0.99) == preset.train


@pytest.mark.parametrize("name,lo,hi", [("mnist_8k_oc", 5000, 8000), ("mnist_5k_oc", 3500, 5000)])
def test_oc_spaces_fix_the_recipe_and_cover_their_budget(name, lo, hi):
    sizes = []
    for spec, cfg in sampled(name, 100, seed=1):
        assert (cfg.optimizer, cfg.schedule, cfg.batch_size, cfg.ema) == ("adam", "onecycle", 32, 0)
        sizes.append(analyze(spec).n_params)
    # every net is in the band the space is for, and most fit the budget it is run with
    assert min(sizes) > lo and sum(s < hi for s in sizes) > 40


@pytest.mark.parametrize("mirror,searched", [(False, False), (True, True), (None, True)])
def test_general_space_mirrors_only_where_the_data_allows(mirror, searched):
    """Digits (mirror False) never get hflip; clothes (True) and unknown data (None) search it;
    for digits the space draws no new parameter, so MNIST studies sample as before."""
    space = get_space("general")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.set_user_attr("mirror", mirror)
    flips = set()
    for _ in range(40):
        trial = study.ask()
        _, cfg = space.sample(trial)
        flips.add(cfg.hflip)
        assert ("hflip" in trial.params) == searched
        study.tell(trial, 0.0)
    assert flips == ({0.0, 0.5} if searched else {0.0})


def test_separable_space_widens_under_the_same_budget():
    """The separable space draws the general space's nets plus separable stages, whose convs
    are depthwise + 1x1 and range wider; the general space never draws them."""
    from nas.spec import DWConv

    assert not any(isinstance(layer, DWConv) for spec, _ in sampled("general", 100, seed=1)
                   for layer in spec.layers)
    space = get_space("separable")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.set_user_attr("max_params", 2000)
    widest = {False: 0, True: 0}
    for _ in range(100):
        trial = study.ask()
        spec, _ = space.sample(trial)
        layers = spec.layers
        for i, layer in enumerate(layers):
            if isinstance(layer, DWConv):  # always followed by its 1x1, never first
                assert i > 0 and layers[i + 1].k == 1
                widest[True] = max(widest[True], layers[i + 1].out)
        widest[False] = max([widest[False]] + [layer.out for layer in layers
                                               if getattr(layer, "k", 0) == 3 and
                                               hasattr(layer, "out")])
        study.tell(trial, 0.0)
    assert widest[False] <= 17 < widest[True]  # 1.2 sqrt(2000 / 9) against 1.2 sqrt(2000)


@pytest.mark.parametrize("max_params,want", [(1000, "separable"), (2000, "separable"),
                                             (4999, "separable"), (5000, "general"),
                                             (8000, "general"), (25000, "general"),
                                             (None, "general")])
def test_auto_space_follows_the_budget(max_params, want):
    """The default space, auto: separable convs under 5,000 parameters, where they won."""
    assert resolve_space("auto", max_params) == want
    assert resolve_space("mnist_8k", max_params) == "mnist_8k"  # a name is kept as it is
    assert resolve_space("my/space.py", max_params) == "my/space.py"
    with pytest.raises(NasError, match="depends on the budget"):
        get_space("auto")


def test_fingerprint_covers_the_space_modules_it_draws_on(tmp_path, monkeypatch):
    """A space that samples with another space module's functions (as `separable` does with
    `general`'s) changes its fingerprint when that module changes: a resumed study sees it.
    The tool's own modules (nas.*) are not part of it."""
    import importlib
    import linecache
    import sys

    from nas.spaces import Space, _space_modules

    pkg = tmp_path / "myspaces"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "base.py").write_text("from nas.spec import Conv\n\ndef net(trial):\n    return 1\n")
    (pkg / "mine.py").write_text("from myspaces.base import net\n\n"
                                 "def sample(trial):\n    return net(trial)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mine = importlib.import_module("myspaces.mine")
    try:
        assert [m.__name__ for m in _space_modules(mine)] == ["myspaces.mine", "myspaces.base"]
        before = Space("mine", mine.sample).fingerprint()
        (pkg / "base.py").write_text("def net(trial):\n    return 2  # another space\n")
        linecache.checkcache()
        assert Space("mine", mine.sample).fingerprint() != before
    finally:
        for name in ("myspaces.mine", "myspaces.base", "myspaces"):
            sys.modules.pop(name, None)
    # the built-in separable space's covers general's; general's is its own file's alone
    sep = get_space("separable")
    assert [m.__name__ for m in _space_modules(importlib.import_module(sep.sample.__module__))] \
        == ["search_spaces.separable", "search_spaces.general"]
    general = get_space("general")
    assert [m.__name__ for m in
            _space_modules(importlib.import_module(general.sample.__module__))] \
        == ["search_spaces.general"]
