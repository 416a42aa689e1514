"""separable: the general space, where each stage may use depthwise-separable 3x3 convs.

A separable conv (depthwise 3x3, then 1x1; Keras' SeparableConv2D) of C -> W channels costs
9C + CW parameters instead of 9CW, so under a small budget its layers can be several times
wider. ``s{i}_sep`` picks it per stage; its widths ``s{i}_sw{j}`` range up to about
sqrt(budget). The net's first conv stays a full 3x3 conv. Everything else, the recipe
included, is the general space's, and so are the known designs (as full-conv points).
"""

from __future__ import annotations

from nas.spaces import register_space
from search_spaces.general import KNOWN as GENERAL_KNOWN
from search_spaces.general import sample_net, sample_recipe

ABOUT = "the general space, plus depthwise-separable 3x3 convs per stage"
VERSION = 1


def sample(trial):
    return sample_net(trial, separable=True), sample_recipe(trial)


KNOWN = {name: {**p, **{f"s{i}_sep": False for i in range(1, p["stages"] + 1)}}
         for name, p in GENERAL_KNOWN.items()}

SPACE = register_space("separable", sample, about=ABOUT, known=KNOWN, version=VERSION)
