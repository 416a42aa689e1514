import pytest
import torch

from nas.build import build, count_params
from nas.errors import NasError
from nas.presets import get_preset, list_presets
from nas.spec import analyze

EXPECTED = {"batch1": 6_379_786, "batch2": 10_970, "baseline": 7_416, "ref7918": 7_918,
            "found7k": 7_090, "found7k2": 7_034, "ref4k": 3_866, "best8k": 6_678,
            "best5k": 4_668,
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
