import pytest
import torch

from nas.build import build, count_params
from nas.errors import NasError
from nas.presets import get_preset, list_presets
from nas.spec import analyze

EXPECTED = {"batch1": 6_379_786, "batch2": 10_970, "baseline": 7_416, "ref7918": 7_918,
            "found7k": 7_090, "found7k2": 7_034, "ref4k": 3_866, "best8k": 6_678,
            "best5k": 4_668, "ref3762": 3_762,
            "ref7070": 7_070}


@pytest.mark.parametrize("name", list_presets())
def test_preset_builds_counts_and_runs(name):
    p = get_preset(name)
    model = build(p.spec).eval()
    assert analyze(p.spec).n_params == count_params(model)
    if name in EXPECTED:
        assert count_params(model) == EXPECTED[name]
    out = model(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    p.train.validate()


def test_under_budget_presets():
    for name in ("batch3", "baseline", "ref7918", "ref7070", "best8k"):
        assert analyze(get_preset(name).spec).n_params < 8000


@pytest.mark.parametrize("name,study,budget",
                         [("best8k", "s8koc", 8000), ("best5k", "s5koc", 5000)])
def test_best_presets_are_search_results_within_the_limits(name, study, budget):
    from nas.presets import found_source

    p = get_preset(name)
    assert p.train.epochs <= 15 and analyze(p.spec).n_params < budget
    src = found_source(name)
    assert src["study"] == study and src["proposed_by"] == "sampler" and not src["enqueued"]


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(NasError, match="unknown preset 'nope' .*baseline"):
        get_preset("nope")


def test_ref3762_is_the_public_design():
    """Xavier-uniform init (zero biases), plain SGD at batch 32, lr per epoch from 0.05 up to
    0.1 at epoch 2, 0.01 at 8, 0 at 15; affine and jitter each on half the images."""
    from nas.config import piecewise_factor

    p = get_preset("ref3762")
    model = build(p.spec)
    conv = model.conv1
    bound = (6 / (conv.in_channels * 9 + conv.out_channels * 9)) ** 0.5  # Glorot uniform
    assert conv.weight.abs().max() <= bound and torch.all(conv.bias == 0)
    t = p.train
    assert (t.optimizer, t.momentum, t.batch_size, t.schedule) == ("sgd", 0.0, 32, "piecewise")
    lrs = [t.lr * piecewise_factor(t.knots, e, 15) for e in (0, 1, 2, 5, 8, 14)]
    assert lrs == pytest.approx([0.05, 0.075, 0.1, 0.055, 0.01, 0.01 / 7])
    assert (t.aug_p, t.jitter, t.jitter_p, t.border) == (0.5, 0.2, 0.5, "reflection")
    assert piecewise_factor(t.knots, 4, 30) == pytest.approx(1.0)  # knots stretch to the run


def test_config_presets_and_spaces_import_without_torch():
    """Spaces and presets need only the torch-free config: listing them stays quick."""
    import subprocess
    import sys

    code = ("import sys, nas.config, nas.presets, nas.spaces; nas.presets.list_presets(); "
            "nas.spaces.list_spaces(); nas.presets.get_preset('best8k'); "
            "bad = [m for m in ('torch', 'optuna') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
