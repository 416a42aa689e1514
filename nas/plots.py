"""Plotly figures. Each plot is a data-gathering function (tested) and a drawing function.

Every HTML page under a results folder references the one ``plotly.min.js`` at that folder's
root (written on first use, 4.6 MB), by a relative path: pages open offline, and a tree of
reports carries plotly once, not once per page. A results folder one or two levels inside
another (results/cpu-DATE/, where archived studies go) uses the outer one's.

The copy committed in this repository is plotly.js's cartesian bundle of the same version
(1.5 MB, from npm's plotly.js-cartesian-dist-min): it draws every trace type these pages use
(scatter and bar; tests/test_report_export.py checks) and keeps a clone 3 MB lighter. A folder
without one gets plotly's full bundle.
"""

from __future__ import annotations

import os
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def plotly_src(page: Path, root: Path) -> str:
    """The script src for ``page``: the plotly.min.js in ``root`` or in one of the two folders
    above it (so the pages of results/cpu-DATE/STUDY/ share results/'s), written into ``root``
    if there is none."""
    from plotly.offline import get_plotlyjs

    root = Path(root).resolve()
    js = next((d / "plotly.min.js" for d in (root, *root.parents[:2])
               if (d / "plotly.min.js").is_file()), root / "plotly.min.js")
    if not js.is_file():
        js.parent.mkdir(parents=True, exist_ok=True)
        tmp = js.with_name(f".plotly.min.js.{os.getpid()}.tmp")
        tmp.write_text(get_plotlyjs())
        tmp.replace(js)
    return os.path.relpath(js, Path(page).resolve().parent)


def write_html(fig: go.Figure, path: Path, root: Path) -> None:
    """Write an offline HTML page that loads the shared plotly.min.js under ``root``."""
    path = Path(path)
    fig.write_html(path, include_plotlyjs=plotly_src(path, root), full_html=True)


def curves_figure(histories: dict, title: str = "", metric_prefix: str = "test") -> go.Figure:
    """Per-epoch loss and accuracy, one line per run (seed or trial)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy (%)"))
    for key, hist in histories.items():
        epochs = [r["epoch"] for r in hist]
        for col, what in ((1, "loss"), (2, "acc")):
            for split, dash in (("train", "dot"), (metric_prefix, "solid")):
                name = f"{split}_{what}"
                if hist and name in hist[0]:
                    fig.add_trace(
                        go.Scatter(x=epochs, y=[r[name] for r in hist], mode="lines+markers",
                                   name=f"{key} {split}", line={"dash": dash},
                                   legendgroup=str(key), showlegend=col == 1),
                        row=1, col=col,
                    )
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title=title, template="plotly_white", height=450)
    return fig
