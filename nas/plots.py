"""Plotly figures. Each plot is a data-gathering function (tested) and a drawing function.

HTML files reference ``plotly.min.js`` written once beside them, so they open offline.
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def write_html(fig: go.Figure, path: Path) -> None:
    """Write an offline HTML page; plotly's JS goes once into the same folder."""
    fig.write_html(path, include_plotlyjs="directory", full_html=True)


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
