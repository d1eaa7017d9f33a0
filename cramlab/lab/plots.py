"""Plotly figures for the notebooks. Each function takes plain data (lists, dicts, `to_dict()` rows) and
returns a figure; nothing here trains, loads or reads files.

- `capacity_bar_chart`      theoretical capacity of one vector, per model (notebook 01)
- `surprisal_chart`, `source_comparison_chart`   per-token surprisal; natural vs unseen vs random (02)
- `LiveCramPlot`            a FigureWidget fed by `cram(..., callback=live.update)` (03)
- `history_chart`           loss/accuracy curves of finished results (03)
- `accuracy_vs_length_chart`   the length sweep (04)
- `info_gain_scatter`       CE with the vector vs CE without it, with the slope-1 line (05)
- `tokens_vs_n_mem_chart`   scaling with the number of vectors (06)
- `progressive_steps_chart`, `attention_share_chart`, `explained_variance_chart`   notebook 08
- `bench_chart`             `cramlab bench` reports: texts·steps/s per configuration, ratio to the baseline
- `text_table`              a plain-text table for printouts

Owns: how things look. Does not own: any rule of what the numbers mean — the Max rule and Table 1's
averages, and the slope-1 constant C, live in cramlab.science.report (`table1_row_from_grid`,
`constant_gain_nats`); the slope-law chart calls the latter to draw C.
"""
from __future__ import annotations

import contextlib
import math
import statistics
from typing import Any, Iterable, Sequence

import plotly.graph_objects as go

from cramlab.science.report import PAPER_THRESHOLD, constant_gain_nats

ACCURACY_COLOR = "#2a9d8f"
LOSS_COLOR = "#e76f51"
SOURCE_COLORS = {"natural": "#264653", "famous": "#264653", "unseen": "#2a9d8f", "pg19": "#2a9d8f",
                 "random": "#e76f51", "user": "#8d99ae"}


def _get(row, key, default=None):
    if isinstance(row, dict):
        return row.get(key, default)
    return getattr(row, key, default)


def _layout(fig: go.Figure, title: str, x: str, y: str, **extra) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, template="plotly_white",
                      height=extra.pop("height", 420), margin=dict(t=80),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), **extra)
    return fig


# --- 01: capacity ---------------------------------------------------------------------------------------

def capacity_bar_chart(rows: Sequence[dict], highlight: str | None = None,
                       title: str | None = None) -> go.Figure:
    """Bars of `capacity_tokens` per model (rows as from `capacity.capacity_table()`), coloured by family."""
    fig = go.Figure()
    families = list(dict.fromkeys(_get(r, "family", "") for r in rows))
    for fam in families:
        sub = [r for r in rows if _get(r, "family", "") == fam]
        fig.add_bar(x=[_get(r, "model") for r in sub], y=[_get(r, "capacity_tokens") for r in sub], name=fam or "model",
                    text=[_get(r, "capacity_tokens") for r in sub], textposition="outside",
                    marker_line_width=[3 if _get(r, "model") == highlight else 0 for r in sub],
                    marker_line_color="black",
                    hovertemplate="%{x}<br>d=%{customdata[0]}, |V|=%{customdata[1]}<br>%{y} tokens<extra></extra>",
                    customdata=[[_get(r, "d"), _get(r, "vocab_size")] for r in sub])
    bits = _get(rows[0], "bits_per_value", 16) if rows else 16
    n_mem = _get(rows[0], "n_mem", 1) if rows else 1
    if title is None:
        title = "Theoretical capacity of " + ("one input vector" if n_mem == 1 else f"{n_mem} input vectors")
    return _layout(fig, f"{title} ({bits} bits per value)",
                   "model", "tokens (d * bits / log2 |V|)")


# --- 02: surprisal -----------------------------------------------------------------------------------------

def surprisal_chart(tokens: Sequence[str], surprisal_bits: Sequence[float], title: str = "Per-token surprisal",
                    predicted: Sequence[bool] | None = None) -> go.Figure:
    """One bar per token: -log2 p(token | what came before). `predicted[i]`: the LM's top guess was right."""
    labels = [f"{i}:{t!r}"[:24] for i, t in enumerate(tokens)]
    colors = None
    if predicted is not None:
        colors = [ACCURACY_COLOR if p else LOSS_COLOR for p in predicted]
    fig = go.Figure(go.Bar(x=labels, y=list(surprisal_bits), marker_color=colors,
                           hovertemplate="%{x}<br>%{y:.2f} bits<extra></extra>"))
    total = sum(surprisal_bits)
    per_token = total / max(1, len(tokens))
    fig = _layout(fig, f"{title}: {total:.1f} bits in {len(tokens)} tokens ({per_token:.2f} per token)",
                  "token", "surprisal (bits)")
    fig.update_xaxes(tickangle=-60)
    return fig


def source_comparison_chart(per_token_bits_by_source: dict[str, Sequence[float]],
                            title: str = "Bits per token, by kind of text") -> go.Figure:
    """Each text's mean surprisal (bits/token) as a point, one column per source, with the mean as a bar."""
    fig = go.Figure()
    for source, values in per_token_bits_by_source.items():
        values = list(values)
        color = SOURCE_COLORS.get(source, "#8d99ae")
        fig.add_bar(x=[source], y=[statistics.fmean(values)], name=f"{source} (mean)", marker_color=color, opacity=0.5)
        fig.add_scatter(x=[source] * len(values), y=values, mode="markers", name=f"{source} texts",
                        marker=dict(color=color, size=10, line=dict(width=1, color="black")))
    return _layout(fig, title, "source", "mean surprisal (bits per token)", showlegend=False)


# --- 03: live training curve ---------------------------------------------------------------------------------

def _figure_widget(fig: go.Figure):
    """A FigureWidget when ipywidgets/anywidget are there (live updates), else the plain figure."""
    try:
        return go.FigureWidget(fig)
    except Exception:  # noqa: BLE001 - no widget support: the same data, drawn once
        return fig


class LiveCramPlot:
    """Loss (nats/token) and teacher-forced accuracy, drawn while `cram` runs.

        live = LiveCramPlot("16 tokens"); display(live.figure)
        cram(lm, texts, callback=live.update)

    With several texts it draws the mean of the texts still training. `steps`, `loss`, `accuracy` keep
    the plain numbers.
    """

    def __init__(self, title: str = "Cramming", max_steps: int | None = None):
        from plotly.subplots import make_subplots
        fig = make_subplots(specs=[[{"secondary_y": True}]])
        fig.add_scatter(x=[], y=[], name="loss (nats/token)", line=dict(color=LOSS_COLOR), secondary_y=False)
        fig.add_scatter(x=[], y=[], name="teacher-forced accuracy", line=dict(color=ACCURACY_COLOR),
                        secondary_y=True)
        _layout(fig, title, "step", "loss (nats per token)")
        fig.update_yaxes(title_text="accuracy", range=[0, 1.05], secondary_y=True)
        if max_steps:
            fig.update_xaxes(range=[0, max_steps])
        self.figure = _figure_widget(fig)
        self.steps: list[int] = []
        self.loss: list[float] = []
        self.accuracy: list[float] = []

    def update(self, progress) -> None:
        """The `callback` of `cram`: takes a CramProgress (or any object with step, loss_per_token_nats, accuracy)."""
        losses = [v for v in _get(progress, "loss_per_token_nats", []) if v is not None and math.isfinite(v)]
        accs = list(_get(progress, "accuracy", []))
        if not losses or not accs:
            return
        self.add(int(_get(progress, "step")), statistics.fmean(losses), statistics.fmean(accs))

    __call__ = update

    def add(self, step: int, loss: float, accuracy: float) -> None:
        self.steps.append(step)
        self.loss.append(loss)
        self.accuracy.append(accuracy)
        fig = self.figure
        ctx = fig.batch_update() if hasattr(fig, "batch_update") else contextlib.nullcontext()
        with ctx:
            fig.data[0].x, fig.data[0].y = tuple(self.steps), tuple(self.loss)
            fig.data[1].x, fig.data[1].y = tuple(self.steps), tuple(self.accuracy)


def history_chart(histories: dict[str, Sequence[Sequence[float]]], title: str = "Training curves") -> go.Figure:
    """Accuracy curves of finished results: {label: result.history} with rows [step, loss, accuracy]."""
    fig = go.Figure()
    for label, hist in histories.items():
        fig.add_scatter(x=[h[0] for h in hist], y=[h[2] for h in hist], mode="lines", name=label)
    fig = _layout(fig, title, "step", "teacher-forced accuracy")
    fig.update_yaxes(range=[0, 1.05])
    return fig


# --- 04: accuracy vs length ------------------------------------------------------------------------------------

def accuracy_vs_length_chart(records: Sequence[Any], threshold: float = PAPER_THRESHOLD,
                             title: str = "Accuracy vs length",
                             paper_max_tokens: int | None = None, paper_label: str = "paper") -> go.Figure:
    """Mean best accuracy per length (with each text as a dot) and the threshold line.

    `records`: one per length, with n_tokens, mean_accuracy, std_accuracy and optionally `results`
    (per-text dicts with teacher_forced_accuracy), e.g. `GridResult.records` or their `to_dict()`.
    """
    xs = [_get(r, "n_tokens") for r in records]
    fig = go.Figure()
    fig.add_scatter(x=xs, y=[_get(r, "mean_accuracy") for r in records], mode="lines+markers", name="mean accuracy",
                    error_y=dict(type="data", array=[_get(r, "std_accuracy", 0) or 0 for r in records]),
                    line=dict(color=ACCURACY_COLOR))
    dots_x, dots_y = [], []
    for r in records:
        for res in _get(r, "results", []) or []:
            dots_x.append(_get(r, "n_tokens"))
            dots_y.append(_get(res, "teacher_forced_accuracy"))
    if dots_x:
        fig.add_scatter(x=dots_x, y=dots_y, mode="markers", name="each text", opacity=0.5,
                        marker=dict(color="#264653", size=7))
    fig.add_hline(y=threshold, line_dash="dash", annotation_text=f"fits: mean accuracy >= {threshold}")
    if paper_max_tokens:
        fig.add_vline(x=paper_max_tokens, line_dash="dot", annotation_text=f"{paper_label}: {paper_max_tokens}")
    fig = _layout(fig, title, "text length N (tokens)", "teacher-forced accuracy")
    fig.update_yaxes(range=[0, 1.05])
    return fig


# --- 05: information gain vs baseline cross-entropy -------------------------------------------------------------

def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope and intercept of y = a x + b (needs two distinct x values)."""
    xs, ys = list(map(float, xs)), list(map(float, ys))
    if len(xs) < 2 or len(set(xs)) < 2:
        return math.nan, math.nan
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    a = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return a, my - a * mx


def info_gain_scatter(points: Sequence[Any], title: str = "Cross-entropy with the vector vs without it") -> go.Figure:
    """The paper's slope-1 plot. Each point is a text: x = CE without the vector (nats, whole text),
    y = CE with it. Dashed: y = x (no gain). Solid: y = x - C with C = `constant_gain_nats(points)`.
    `points`: CramResult dicts (baseline_ce_nats, final_ce_nats, converged, and a `source` key or attribute).
    """
    fig = go.Figure()
    sources = list(dict.fromkeys(str(_get(p, "source", "text")) for p in points))
    for src in sources:
        sub = [p for p in points if str(_get(p, "source", "text")) == src]
        fig.add_scatter(x=[_get(p, "baseline_ce_nats") for p in sub], y=[_get(p, "final_ce_nats") for p in sub],
                        mode="markers", name=src,
                        marker=dict(size=10, color=SOURCE_COLORS.get(src, "#8d99ae"),
                                    symbol=["circle-open" if _get(p, "converged", False) else "circle" for p in sub]),
                        customdata=[[_get(p, "n_tokens"), _get(p, "teacher_forced_accuracy")] for p in sub],
                        hovertemplate="CE %{x:.1f} -> %{y:.1f} nats<br>N=%{customdata[0]}, "
                                      "acc %{customdata[1]:.2f}<extra></extra>")
    xs = [_get(p, "baseline_ce_nats") for p in points]
    if xs:
        lo, hi = 0.0, max(xs) * 1.05
        fig.add_scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="no gain (y = x)",
                        line=dict(dash="dash", color="gray"))
        c = constant_gain_nats(points)
        if math.isfinite(c):
            fig.add_scatter(x=[c, hi], y=[0.0, hi - c], mode="lines", name=f"slope 1: y = x - {c:.0f} nats",
                            line=dict(color="black"))
    return _layout(fig, title + " (open circles: texts that fit)", "CE without the vector (nats, whole text)",
                   "CE with the vector (nats)")


# --- 06: tokens vs number of vectors -------------------------------------------------------------------------------

def tokens_vs_n_mem_chart(ours: dict[int, float] | None = None, paper: dict[str, dict[int, int]] | None = None,
                          capacity: dict[str, dict[int, float]] | None = None, ours_label: str = "ours",
                          title: str = "Tokens vs number of vectors") -> go.Figure:
    """Lines of tokens against n_mem (log-log): our measurements, the paper's Max, theoretical capacities."""
    fig = go.Figure()
    for name, series in (paper or {}).items():
        ks = sorted(series)
        fig.add_scatter(x=ks, y=[series[k] for k in ks], mode="lines+markers", name=f"paper: {name}")
    for name, series in (capacity or {}).items():
        ks = sorted(series)
        fig.add_scatter(x=ks, y=[series[k] for k in ks], mode="lines", name=f"capacity: {name}",
                        line=dict(dash="dot"))
    if ours:
        ks = sorted(ours)
        fig.add_scatter(x=ks, y=[ours[k] for k in ks], mode="lines+markers", name=ours_label,
                        line=dict(color="black", width=3), marker=dict(size=10))
    fig = _layout(fig, title, "number of vectors n_mem", "tokens")
    fig.update_xaxes(type="log", dtick=math.log10(2))
    fig.update_yaxes(type="log")
    return fig


# --- 08: progressive cramming, attention, the path of the vector ---------------------------------------------

def progressive_steps_chart(texts: Sequence[Any], title: str = "Progressive cramming: steps per length") -> go.Figure:
    """Optimisation steps at every length, one line per text (`ProgressiveSummary.texts`, or dicts with
    text_id and records [{n_tokens, steps}, ...])."""
    fig = go.Figure([go.Scatter(x=[_get(r, "n_tokens") for r in _get(t, "records", [])],
                                y=[_get(r, "steps") for r in _get(t, "records", [])],
                                mode="lines+markers", name=_get(t, "text_id")) for t in texts])
    return _layout(fig, title, "length N (tokens)", "steps")


def attention_share_chart(crammed: Any, baseline: Any | None = None,
                          title: str = "Attention on the prefix, per layer") -> go.Figure:
    """Per layer, the share of the text's attention on the trained vector (bars), on a random vector of
    the same size (`baseline`, bars) and on the sink token (line); `AttentionShares` or their `to_dict()`."""
    mem, sink = list(_get(crammed, "mem_share")), list(_get(crammed, "sink_share"))
    layers = list(range(len(mem)))
    traces = [go.Bar(x=layers, y=mem, name="trained vector")]
    if baseline is not None:
        traces.append(go.Bar(x=layers, y=list(_get(baseline, "mem_share")), name="random vector"))
    traces.append(go.Scatter(x=layers, y=sink, name="sink token"))
    return _layout(go.Figure(traces), title, "layer", "share of attention")


def explained_variance_chart(pca: Any, share: float = 0.99,
                             title: str = "Cumulative explained variance of the path") -> go.Figure:
    """Cumulative share of variance against the number of principal components (`TrajectoryPCA` or its
    `to_dict()`), with a dashed line at `share`."""
    cumulative = list(_get(pca, "cumulative"))
    fig = go.Figure(go.Scatter(x=list(range(1, len(cumulative) + 1)), y=cumulative, mode="lines+markers"))
    fig.add_hline(y=share, line_dash="dash", annotation_text=f"{share:.0%}")
    return _layout(fig, title, "components", "share of variance")


# --- cramlab bench -----------------------------------------------------------------------------------------------

def _ours_dtype(report) -> str:
    dtype = _get(report, "ours_dtype") or _get(_get(report, "race") or {}, "ours_dtype")
    return f", ours {str(dtype).replace('torch.', '')}" if dtype else ""


def bench_chart(reports: Sequence[dict], title: str = "Our engine against the authors' loop") -> go.Figure:
    """Texts·steps/s per configuration (log scale), one group of bars per `cramlab bench` report (card),
    each bar labelled with its ratio to the baseline of the same run. Rows of other models (the
    Llama-1B-shaped speed test) are left out: they have no baseline."""
    fig = go.Figure()
    for rep in reports:
        device = _get(rep, "device", "?")
        rows = [r for r in _get(rep, "rows", []) if _get(r, "device") == device]
        if not rows:
            continue
        fig.add_bar(x=[_get(r, "config") for r in rows], y=[_get(r, "texts_steps_per_s") for r in rows],
                    name=f"{device}{_ours_dtype(rep)} ({_get(rep, 'date', '')}, torch {_get(rep, 'torch', '')})",
                    text=[f"{_get(r, 'ratio_vs_baseline'):.2f}×" if _get(r, "ratio_vs_baseline") else "" for r in rows],
                    textposition="outside",
                    customdata=[[_get(r, "n_texts"), _get(r, "n_tokens"), _get(r, "step_ms")] for r in rows],
                    hovertemplate="%{x}: %{y:.1f} texts·steps/s<br>%{customdata[0]} texts × %{customdata[1]} "
                                  "tokens, %{customdata[2]:.1f} ms/step<extra></extra>")
    fig = _layout(fig, title, "configuration (same process, same texts)", "texts · steps / s (log)",
                  barmode="group")
    fig.update_yaxes(type="log")
    fig.update_layout(height=520, legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))
    return fig


# --- text tables -------------------------------------------------------------------------------------------------

def text_table(rows: Iterable[Any], columns: Sequence[str], formats: dict[str, str] | None = None,
               headers: dict[str, str] | None = None) -> str:
    """A fixed-width plain-text table: `columns` are keys of the rows; `formats` e.g. {"acc": ".3f"}."""
    formats, headers = formats or {}, headers or {}
    cells = [[headers.get(c, c) for c in columns]]
    for r in rows:
        line = []
        for c in columns:
            v = _get(r, c)
            if v is None:
                line.append("-")
            elif c in formats and isinstance(v, (int, float)) and not isinstance(v, bool):
                line.append(format(v, formats[c]))
            else:
                line.append(str(v))
        cells.append(line)
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    out = []
    for j, row in enumerate(cells):
        out.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
