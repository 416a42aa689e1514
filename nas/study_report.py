"""`nas report STUDY`: one offline HTML page over a study, plus the trials as CSV and Parquet.

Data-gathering functions (``pareto_data``, ``curves_data``) are separate from drawing, so the
tests check the data; plotly's JS is written once beside the page and never fetched.
"""

from __future__ import annotations

import html
import json
import math
import warnings
from pathlib import Path

import optuna
import pandas as pd
import plotly.graph_objects as go

from nas.studyio import completed, is_rejected, study_dir, trials_frame

TARGET_ACC = 99.4  # the classic MNIST target, %


def pareto_data(study: optuna.Study) -> pd.DataFrame:
    """One row per trained or rejected trial, with ``dominated`` over (params min, val max).

    Multi-objective studies use Optuna's own Pareto set; single-objective studies compute the
    non-dominated set over (n_params, validation accuracy) of completed trials.
    """
    rows = []
    done = completed(study)
    if len(study.directions) > 1:
        front = {t.number for t in study.best_trials}
    else:
        front = set()
        for t in done:
            n, v = t.user_attrs["n_params"], t.values[0]
            if not any(
                (o.user_attrs["n_params"] <= n and o.values[0] >= v)
                and (o.user_attrs["n_params"] < n or o.values[0] > v)
                for o in done
            ):
                front.add(t.number)
    for t in study.get_trials(deepcopy=False):
        ua = t.user_attrs
        if "n_params" not in ua:
            continue
        test = ua.get("test_acc") or []
        hist = ua.get("history") or []
        kind = "rejected" if is_rejected(t) else ("complete" if t in done else "stopped")
        rows.append({
            "number": t.number, "kind": kind, "n_params": ua["n_params"],
            "macs": ua.get("macs"), "rf": ua.get("rf"), "arch": ua.get("arch", ""),
            "peak_int8_bytes": ua.get("peak_int8_bytes"), "int8_bytes": ua.get("int8_bytes"),
            "val_acc": hist[-1]["val_acc"] if hist else math.nan,
            "test_acc": test[-1] if test else math.nan, "epochs_run": len(hist),
            "dominated": t.number not in front,
        })
    return pd.DataFrame(rows)


def curves_data(study: optuna.Study, k: int = 5) -> dict[int, list[dict]]:
    """Per-epoch histories of the k best completed trials (by validation accuracy)."""
    best = sorted(completed(study), key=lambda t: t.values[0], reverse=True)[:k]
    return {t.number: t.user_attrs["history"] for t in best}


# --x NAME: the trials' column and its axis title
X_AXES = {"params": ("n_params", "parameters"), "macs": ("macs", "MACs per image"),
          "peak": ("peak_int8_bytes", "peak int8 activation bytes (deployed, one image)"),
          "int8": ("int8_bytes", "int8 model bytes")}


def pareto_figure(df: pd.DataFrame, max_params: int | None, metric: str = "val_acc",
                  x: str = "params") -> go.Figure:
    """Accuracy against a size figure (``x``, one of X_AXES); ``max_params``: the budget line
    in that figure's unit, or None."""
    col, x_title = X_AXES[x]
    df = df.assign(x_value=df[col])
    fig = go.Figure()
    label = "validation" if metric == "val_acc" else "test"
    trained = df[df.kind != "rejected"]
    unit = {"params": "params", "macs": "MACs", "peak": "peak bytes", "int8": "int8 bytes"}[x]
    hover = ("trial %{customdata[0]}<br>%{customdata[1]}<br>%{x:,} " + unit + ", "
             "%{customdata[2]:,} MACs, RF %{customdata[3]}<br>" + label +
             " %{y:.2f}%, %{customdata[4]} epochs<extra></extra>")
    groups = (
        ("Pareto front", trained[(trained.kind == "complete") & ~trained.dominated], 1.0, 11),
        ("dominated", trained[(trained.kind == "complete") & trained.dominated], 0.3, 8),
        ("stopped early", trained[trained.kind == "stopped"], 0.25, 7),
    )
    for name, part, opacity, size in groups:
        if name == "Pareto front":
            part = part.sort_values("x_value")
        fig.add_trace(go.Scatter(
            x=part.x_value, y=part[metric], name=name, opacity=opacity,
            mode="lines+markers" if name == "Pareto front" else "markers",
            line={"shape": "hv"},
            marker={"size": size, "symbol": "circle" if name != "stopped early" else "x"},
            customdata=part[["number", "arch", "macs", "rf", "epochs_run"]].values,
            hovertemplate=hover,
        ))
    # y range: the top 90% of trained points, so the 99.x% region is readable
    lo = 90.0
    if trained[metric].notna().any():
        lo = max(trained[metric].quantile(0.1) - 1, trained[metric].min() - 0.6)
    rej = df[df.kind == "rejected"]
    if len(rej):  # no accuracy: drawn as ticks along the bottom, at their parameter count
        fig.add_trace(go.Scatter(
            x=rej.x_value, y=[lo + 0.15] * len(rej), mode="markers",
            name="rejected from their spec",
            marker={"symbol": "line-ns-open", "size": 12, "color": "grey"},
            customdata=rej[["number", "arch"]].values,
            hovertemplate="trial %{customdata[0]}: %{x:,} " + unit + ", rejected<br>"
                          "%{customdata[1]}<extra></extra>",
        ))
    if max_params:
        fig.add_vline(x=max_params, line_dash="dash", line_color="red",
                      annotation_text=f"budget {max_params:,}")
    fig.add_hline(y=TARGET_ACC, line_dash="dot", line_color="green",
                  annotation_text=f"{TARGET_ACC}%")
    fig.update_layout(title=f"{x_title} vs final-epoch {label} accuracy",
                      xaxis_title=x_title, yaxis_title=f"{label} accuracy (%)",
                      template="plotly_white", height=520)
    fig.update_yaxes(range=[lo, 100])
    return fig


def _safe(fn, *args, **kw):
    """Optuna's plots raise on studies too small for them; show why instead of failing."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # importance warns about sparse regimes
            return fn(*args, **kw)
    except (ValueError, RuntimeError, ZeroDivisionError) as e:
        return f"<p><i>not available: {html.escape(str(e))}</i></p>"


def report_figures(study: optuna.Study, max_params: int | None, x: str = "params",
                   budget: float | None = None) -> list[tuple[str, object]]:
    """The report's sections as (title, figure or an HTML note). Their trace types must be in
    the committed results/plotly.min.js, plotly.js's cartesian bundle
    (tests/test_report_export.py checks)."""
    from nas.plots import curves_figure

    df = pareto_data(study)
    vis = optuna.visualization
    sections: list[tuple[str, object]] = []
    if len(df):
        line = max_params if x == "params" else budget
        sections.append(("Pareto: validation accuracy", pareto_figure(df, line, x=x)))
        if df.test_acc.notna().any():  # only studies run with --record-test have it
            sections.append(("Pareto: test accuracy (recorded with --record-test; it judges, "
                             "never selects)", pareto_figure(df, line, "test_acc", x=x)))
    single = len(study.directions) == 1
    target = None if single else (lambda t: t.values[0])
    sections.append(("Optimization history", _safe(
        vis.plot_optimization_history, study, target=target, target_name="val accuracy")))
    sections.append(("Parameter importances", _safe(
        vis.plot_param_importances, study, target=target, target_name="val accuracy")))
    curves = curves_data(study)
    if curves:
        sections.append(("Per-epoch curves of the top trials",
                         curves_figure(curves, metric_prefix="val")))
    return sections


def race_summary(meta: dict) -> str:
    """The seed race in a few lines, from study.json: each finalist's fresh-seed scores, the
    winner, and whether its lead is clear of the race's own noise. Empty without a race."""
    w = meta.get("winner")
    if not w:
        return ""
    from nas.race import finalist_lines, margin

    lines = [f"seed race (validation only): {w.get('rule', '')}"]
    lines += [f"  {line}" for line in finalist_lines(meta.get("race") or [])]
    m = w.get("margin")
    if m is None and w.get("race_vals"):  # a study raced before the margin was recorded
        best = next((r for r in meta.get("race") or [] if r["trial"] == w["trial"]), None)
        m = margin(meta["race"], best) if best else None
    lead = (f"; it leads trial {m['runner_up']} by {m['lead']:.3f} points, standard error "
            f"{m['se']:.3f}: " + ("level on validation, the pick is close to a coin toss"
                                  if m["level"] else "a clear lead")) if m else ""
    lines.append(f"winner: trial {w['trial']} ({w['n_params']:,} params){lead}")
    return "\n".join(lines)


def write_report(study: optuna.Study, results_dir: str | Path, max_params: int | None,
                 x: str = "params", budget: float | None = None) -> Path:
    """``x``: the Pareto plots' x-axis (X_AXES); ``budget``: its budget line, in that unit."""
    from nas.plots import plotly_src

    out = study_dir(results_dir, study.study_name)
    out.mkdir(parents=True, exist_ok=True)
    table = trials_frame(study)
    table.to_csv(out / "trials.csv", index=False)
    table.to_parquet(out / "trials.parquet", index=False)
    src = plotly_src(out / "report.html", Path(results_dir))
    sections = report_figures(study, max_params, x, budget)
    top = table[table.state == "complete"].sort_values("val_acc", ascending=False).head(15)
    cols = [c for c in ("number", "n_params", "macs", "rf", "val_acc", "test_acc",
                        "best_test_acc", "best_test_epoch", "epochs_run", "seconds", "arch")
            if c in top]
    parts = []
    for title, fig in sections:
        body = fig if isinstance(fig, str) else fig.to_html(full_html=False,
                                                              include_plotlyjs=False)
        parts.append(f"<h2>{html.escape(title)}</h2>\n{body}")
    counts = table.state.value_counts().to_dict() if len(table) else {}
    meta_path = out / "study.json"
    race = race_summary(json.loads(meta_path.read_text())) if meta_path.is_file() else ""
    race_html = f"<h2>Seed race</h2>\n<pre>{html.escape(race)}</pre>\n" if race else ""
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>nas report: {html.escape(study.study_name)}</title>
<script src="{html.escape(src)}"></script>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 6px}}
</style></head><body>
<h1>Study {html.escape(study.study_name)}</h1>
<p>{len(table)} trials: {html.escape(', '.join(f'{v} {k}' for k, v in counts.items()))}.
Budget: {html.escape(f"fewer than {max_params:,} parameters" if max_params else "see study.json")}.
Selection: final-epoch validation accuracy;
test accuracy is shown for judgement only.</p>
{race_html}{''.join(parts)}
<h2>Top trials</h2>
{top[cols].to_html(index=False, float_format=lambda v: f"{v:.2f}")}
</body></html>
"""
    path = out / "report.html"
    path.write_text(page)
    return path
