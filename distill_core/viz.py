"""Plotly figures for every chart Distill Explorer shows.

Plain data in (lists, numpy arrays, dicts; torch tensors are converted), `plotly.graph_objects.Figure`
out, so a notebook user gets the same pictures as the app. The numbers are computed elsewhere; this module
only converts units (fractions to percent), lays out traces and styles them. Colours carry meaning and are
the same in every figure: `BASELINE_COLOR`, `DISTILLED_COLOR`, `TEACHER_COLOR`, `LABEL_COLOR`,
`BIAS_CORRECTED_COLOR`. Backgrounds are transparent and text colour is left to the theme, so figures read on
light and dark themes alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from numpy.typing import ArrayLike

# Okabe-Ito colours (colour-blind safe). Each keeps a contrast of at least 3:1 against both a white page and
# Streamlit's dark background (#0E1117), so bars and lines stay visible on either theme.
BASELINE_COLOR = "#D55E00"  # vermillion
DISTILLED_COLOR = "#0072B2"  # blue
TEACHER_COLOR = "#009E73"  # bluish green
LABEL_COLOR = "#8C8C8C"  # neutral grey: a hard label says nothing about the wrong classes
BIAS_CORRECTED_COLOR = "#CC79A7"  # reddish purple
ACCENT_COLOR = "#B07D00"  # dark gold, for a reference curve that is none of the above
# Runs, and per-class lines, take colours in this order (then dash styles), so a run keeps its colour
# across the overlay and the per-class figure.
RUN_COLORS = (DISTILLED_COLOR, BASELINE_COLOR, TEACHER_COLOR, BIAS_CORRECTED_COLOR, ACCENT_COLOR, LABEL_COLOR)
_DASHES = ("solid", "dash", "dot", "dashdot")

_TRANSPARENT = "rgba(0,0,0,0)"
_GRID = "rgba(128,128,128,0.25)"
_REFERENCE = "rgba(128,128,128,0.9)"  # reference lines (maximum entropy, zero gain)
_HEATMAP_SCALE = "Viridis"  # perceptually uniform and colour-blind safe
_GREYSCALE = [[0.0, "black"], [1.0, "white"]]
_MAX_ANNOTATED_CLASSES = 20  # beyond this, cell text is unreadable; hover still gives the value
_TEMPERATURE_TITLE = "temperature T (dimensionless, log scale)"
# Hover text for bar heights.
_PROBABILITY_VALUE = "%{y:.3f}"
_PERCENT_VALUE = "%{y:.1f}%"
_GRADIENT_VALUE = "%{y:.4g}"
# Accuracy curves zoom to the data (differences of a point matter) but never past 0 % or 100 %.
_PERCENT_AUTORANGE = {"clipmin": 0, "clipmax": 100}

# (history key, legend name, colour, dash) for the live training charts.
_ACCURACY_SERIES = (
    ("baseline_test_accuracy", "baseline · test", BASELINE_COLOR, "solid"),
    ("baseline_val_accuracy", "baseline · validation", BASELINE_COLOR, "dash"),
    ("distilled_test_accuracy", "distilled · test", DISTILLED_COLOR, "solid"),
    ("distilled_val_accuracy", "distilled · validation", DISTILLED_COLOR, "dash"),
)
_LOSS_SERIES = (
    ("baseline_hard_loss", "baseline · hard (CE)", BASELINE_COLOR, "solid"),
    ("distilled_total_loss", "distilled · total", DISTILLED_COLOR, "solid"),
    ("distilled_hard_loss", "distilled · hard (CE)", DISTILLED_COLOR, "dash"),
    ("distilled_soft_loss", "distilled · soft (T²·KL)", DISTILLED_COLOR, "dot"),
)
_METRIC_NAMES = {key: name for key, name, _, _ in _ACCURACY_SERIES + _LOSS_SERIES}


# ----------------------------------------------------------------------------------------------------
# Input conversion and checks
# ----------------------------------------------------------------------------------------------------


def _np(values: Any) -> np.ndarray:
    """A numpy view of a list, array or torch tensor (duck-typed, so this module never imports torch)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _array(values: Any, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """A float array of the given shape (None matches any size), or a ValueError naming the argument."""
    array = _np(values).astype(float)
    matches = array.ndim == len(shape) and all(
        want in (None, got) for want, got in zip(shape, array.shape, strict=False)
    )
    if not matches:
        wanted = "(" + ", ".join("any" if size is None else str(size) for size in shape) + ")"
        raise ValueError(f"{name} must have shape {wanted}, got {array.shape}; pass one value per entry")
    return array


def _names(class_names: Sequence[str]) -> list[str]:
    names = [str(name) for name in class_names]
    if not names:
        raise ValueError("class_names must hold at least one class name")
    return names


def _class_index(index: int, name: str, num_classes: int) -> int:
    if not 0 <= int(index) < num_classes:
        raise ValueError(f"{name} must be a class index in [0, {num_classes - 1}], got {index}")
    return int(index)


def _positive(value: float, name: str) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return float(value)


def _temperatures(values: Any, name: str = "temperatures") -> np.ndarray:
    temperatures = _array(values, name, (None,))
    if temperatures.size == 0 or np.any(temperatures <= 0):
        raise ValueError(f"{name} must be a non-empty list of positive temperatures (they go on a log axis)")
    return temperatures


def _percent(values: Any, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """Fractions in [0, 1] as percentages; refuses values that are already percentages."""
    fractions = _array(values, name, shape)
    if np.any((fractions < 0) | (fractions > 1)):
        raise ValueError(f"{name} must hold fractions in [0, 1] (e.g. 0.95, not 95)")
    return fractions * 100


def _interp_log_x(temperatures: np.ndarray, values: np.ndarray, at: float) -> float:
    """The curve's value at `at`, interpolated along log T as drawn; temperatures may be in any order."""
    order = np.argsort(temperatures)
    return float(np.interp(math.log(at), np.log(temperatures[order]), values[order]))


# ----------------------------------------------------------------------------------------------------
# Shared styling
# ----------------------------------------------------------------------------------------------------


def _layout(
    fig: go.Figure, *, title: str, x_title: str, y_title: str, show_grid: bool = True, **layout: Any
) -> go.Figure:
    """Title, axis titles and theme-neutral styling for every figure; `layout` goes to update_layout."""
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left"},
        paper_bgcolor=_TRANSPARENT,
        plot_bgcolor=_TRANSPARENT,
        margin={"l": 64, "r": 24, "t": 64, "b": 110},
        # The legend sits at the bottom of the figure: above the plot it collides with the title once it wraps.
        legend={
            "orientation": "h",
            "x": 0.0,
            "y": 0.0,
            "yref": "container",
            "yanchor": "bottom",
            "bgcolor": _TRANSPARENT,
        },
        hoverlabel={"namelength": -1},
        **layout,
    )
    axis_style = {"showgrid": show_grid, "gridcolor": _GRID, "zerolinecolor": _GRID, "linecolor": _GRID}
    fig.update_xaxes(title_text=x_title, automargin=True, **axis_style)
    fig.update_yaxes(title_text=y_title, automargin=True, **axis_style)
    return fig


def _categorical_classes(fig: go.Figure) -> go.Figure:
    """Class names such as "0".."9" must stay categories; Plotly would otherwise read them as numbers."""
    fig.update_xaxes(type="category")
    if any(isinstance(trace, go.Heatmap) for trace in fig.data):
        fig.update_yaxes(type="category")
    return fig


def _style(index: int) -> tuple[str, str]:
    """(colour, dash) for the index-th run or class line: colours first, then dash styles."""
    return RUN_COLORS[index % len(RUN_COLORS)], _DASHES[(index // len(RUN_COLORS)) % len(_DASHES)]


def _emphasise_classes(fig: go.Figure, class_names: list[str], indices: Sequence[int]) -> None:
    """Bold tick labels for the given classes (the true label, or classes left out of training)."""
    chosen = set(indices)
    ticktext = [f"<b>{name}</b>" if k in chosen else name for k, name in enumerate(class_names)]
    fig.update_xaxes(tickmode="array", tickvals=class_names, ticktext=ticktext)


def _note(fig: go.Figure, text: str) -> None:
    """A message in the middle of an otherwise empty chart."""
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False, font={"size": 16})


def _bar(x: Sequence[str], y: np.ndarray, name: str, color: str, value: str, **bar: Any) -> go.Bar:
    """One bar series; `value` is the hover text for the bar's height, e.g. "%{y:.1f}%"."""
    return go.Bar(x=x, y=y, name=name, marker_color=color, hovertemplate=f"%{{x}}: {value}<extra>{name}</extra>", **bar)


def _current_temperature_line(temperature: float, y_top: float) -> go.Scatter:
    """A dotted vertical line at the current T, drawn as a trace because shapes on log axes need log units."""
    return go.Scatter(
        x=[temperature, temperature],
        y=[0.0, y_top],
        mode="lines",
        name=f"current T = {temperature:g}",
        line={"color": _REFERENCE, "dash": "dot", "width": 1.5},
        hoverinfo="skip",
    )


def _add_max_entropy_line(fig: go.Figure, num_classes: int, argument: str) -> float:
    """Dashed line at log K, the entropy of the uniform distribution; returns log K.

    `argument` names the caller's parameter that fixed K, for the error message.
    """
    if num_classes < 2:
        raise ValueError(f"{argument} must give at least 2 classes for entropy to vary, got {num_classes}")
    max_entropy = math.log(num_classes)
    fig.add_hline(
        y=max_entropy,
        line={"color": _REFERENCE, "dash": "dash", "width": 1.5},
        annotation_text=f"maximum (uniform): log {num_classes} = {max_entropy:.2f} nats",
        annotation_position="bottom right",
    )
    return max_entropy


# ----------------------------------------------------------------------------------------------------
# Temperature explorer
# ----------------------------------------------------------------------------------------------------


def soft_targets_figure(
    class_names: Sequence[str],
    probs_at_t: ArrayLike,
    probs_at_1: ArrayLike,
    label: int | None,
    temperature: float,
) -> go.Figure:
    """Grouped bars of one example's targets: the one-hot label (if given), the teacher at T = 1 and at T.

    `probs_at_t` and `probs_at_1` are probability vectors of shape (K,).
    """
    names = _names(class_names)
    at_t = _array(probs_at_t, "probs_at_t", (len(names),))
    at_1 = _array(probs_at_1, "probs_at_1", (len(names),))
    temperature = _positive(temperature, "temperature")
    fig = go.Figure()
    if label is not None:
        one_hot = np.eye(len(names))[_class_index(label, "label", len(names))]
        fig.add_trace(_bar(names, one_hot, "true label (one-hot)", LABEL_COLOR, _PROBABILITY_VALUE))
    if temperature != 1.0:  # at T = 1 the two teacher series are the same bars
        fig.add_trace(_bar(names, at_1, "teacher, T = 1", TEACHER_COLOR, _PROBABILITY_VALUE, opacity=0.45))
    fig.add_trace(_bar(names, at_t, f"teacher, T = {temperature:g}", TEACHER_COLOR, _PROBABILITY_VALUE))
    title = f"Soft targets at T = {temperature:g} vs the hard label"
    _layout(fig, title=title, x_title="class", y_title="probability", barmode="group")
    fig.update_yaxes(range=[0, 1.02])
    _categorical_classes(fig)
    return fig


def entropy_curve_figure(
    temperatures: ArrayLike,
    entropies: ArrayLike,
    current_temperature: float,
    num_classes: int,
) -> go.Figure:
    """Entropy of the soft targets (nats) against T on a log axis, with log K and a marker at current T."""
    temps = _temperatures(temperatures)
    values = _array(entropies, "entropies", (temps.size,))
    current = _positive(current_temperature, "current_temperature")
    fig = go.Figure()
    max_entropy = _add_max_entropy_line(fig, num_classes, "num_classes")
    fig.add_trace(
        go.Scatter(
            x=temps,
            y=values,
            mode="lines",
            name="entropy H(q)",
            line={"color": TEACHER_COLOR, "width": 3},
            customdata=values / max_entropy,
            hovertemplate="T = %{x:.3g}<br>H = %{y:.3f} nats (%{customdata:.0%} of log K)<extra></extra>",
        )
    )
    current_entropy = _interp_log_x(temps, values, current)
    fig.add_trace(
        go.Scatter(
            x=[current],
            y=[current_entropy],
            mode="markers+text",
            name=f"current T = {current:g}",
            marker={"color": TEACHER_COLOR, "size": 13, "line": {"width": 2, "color": "white"}},
            text=[f"T = {current:g}"],
            textposition="top left",
            customdata=[current_entropy / max_entropy],
            hovertemplate="T = %{x:.3g}<br>H = %{y:.3f} nats (%{customdata:.0%} of log K)<extra></extra>",
        )
    )
    title = f"Entropy of the soft targets rises with T ({current_entropy / max_entropy:.0%} of maximum now)"
    _layout(fig, title=title, x_title=_TEMPERATURE_TITLE, y_title="entropy (nats)", showlegend=False)
    fig.update_xaxes(type="log")
    fig.update_yaxes(range=[0, max_entropy * 1.08])
    return fig


def softmax_animation_figure(
    class_names: Sequence[str],
    temperatures: ArrayLike,
    probs: ArrayLike,
) -> go.Figure:
    """Bars of softmax(z / T) animated over T: play/pause and a slider that run in the browser alone.

    `probs` has shape (M, K): one probability vector per temperature in `temperatures` (M,). Frames are
    ordered by temperature and the chart opens at the temperature closest to 1, the ordinary softmax.
    """
    names = _names(class_names)
    temps = _temperatures(temperatures)
    table = _array(probs, "probs", (temps.size, len(names)))  # (M, K)
    order = np.argsort(temps)
    temps, table = temps[order], table[order]
    labels = [f"T = {temperature:.3g}" for temperature in temps]
    start = int(np.argmin(np.abs(np.log(temps))))

    def bars(row: np.ndarray) -> go.Bar:
        return _bar(names, row, "probability", TEACHER_COLOR, _PROBABILITY_VALUE)

    fig = go.Figure(
        data=[bars(table[start])],
        frames=[go.Frame(data=[bars(row)], name=lb) for row, lb in zip(table, labels, strict=True)],
    )
    fig.update_layout(**_animation_controls(labels, start))
    title = "Softmax as the temperature T changes (press play)"
    _layout(fig, title=title, x_title="class", y_title="probability", showlegend=False)
    fig.update_layout(margin={"b": 150})
    fig.update_yaxes(range=[0, 1])
    _categorical_classes(fig)
    return fig


def _animation_controls(frame_names: list[str], start: int) -> dict[str, Any]:
    """Play/pause buttons and a slider over the named frames, for `fig.update_layout`."""
    # redraw=False lets bars glide between frames instead of re-rendering the whole plot.
    still = {"frame": {"duration": 0, "redraw": False}, "mode": "immediate", "transition": {"duration": 0}}
    playing = {
        "frame": {"duration": 350, "redraw": False},
        "fromcurrent": True,
        "transition": {"duration": 250},
    }
    buttons = {
        "type": "buttons",
        "direction": "left",
        "x": 0.0,
        "y": -0.18,
        "xanchor": "left",
        "yanchor": "top",
        "pad": {"t": 8, "r": 8},
        "buttons": [
            {"label": "▶ Play", "method": "animate", "args": [None, playing]},
            {"label": "❚❚ Pause", "method": "animate", "args": [[None], still]},
        ],
    }
    slider = {
        "active": start,
        "x": 0.2,
        "len": 0.8,
        "y": -0.12,
        "yanchor": "top",
        "currentvalue": {"visible": True, "xanchor": "right"},
        "steps": [{"label": name, "method": "animate", "args": [[name], still]} for name in frame_names],
    }
    return {"updatemenus": [buttons], "sliders": [slider]}


def dataset_entropy_figure(
    temperatures: ArrayLike,
    mean_entropy: ArrayLike,
    per_class: ArrayLike | None,
    class_names: Sequence[str],
    current_temperature: float,
) -> go.Figure:
    """Mean soft-target entropy over a dataset against T (bold), optionally one thin line per true class.

    `mean_entropy` has shape (M,) for the M `temperatures`; `per_class` has shape (K, M). Clicking a class
    in the legend toggles its line; clicking the group title toggles them all.
    """
    names = _names(class_names)
    temps = _temperatures(temperatures)
    mean = _array(mean_entropy, "mean_entropy", (temps.size,))
    current = _positive(current_temperature, "current_temperature")
    fig = go.Figure()
    max_entropy = _add_max_entropy_line(fig, len(names), "class_names")
    if per_class is not None:
        by_class = _array(per_class, "per_class", (len(names), temps.size))  # (K, M)
        for k, (name, row) in enumerate(zip(names, by_class, strict=True)):
            color, dash = _style(k)
            fig.add_trace(
                go.Scatter(
                    x=temps,
                    y=row,
                    mode="lines",
                    name=name,
                    legendgroup="per class",
                    legendgrouptitle_text="true class" if k == 0 else None,
                    line={"color": color, "dash": dash, "width": 1.2},
                    opacity=0.75,
                    hovertemplate=f"class {name}<br>T = %{{x:.3g}}<br>H = %{{y:.3f}} nats<extra></extra>",
                )
            )
    fig.add_trace(
        go.Scatter(
            x=temps,
            y=mean,
            mode="lines",
            name="all examples (mean)",
            line={"color": TEACHER_COLOR, "width": 4},
            hovertemplate="mean over examples<br>T = %{x:.3g}<br>H = %{y:.3f} nats<extra></extra>",
        )
    )
    fig.add_trace(_current_temperature_line(current, max_entropy))
    title = "Mean entropy of the teacher's soft targets over the dataset"
    _layout(fig, title=title, x_title=_TEMPERATURE_TITLE, y_title="mean entropy (nats)")
    fig.update_layout(
        legend={"groupclick": "toggleitem", "orientation": "v", "x": 1.02, "y": 1.0, "yref": "paper", "yanchor": "top"}
    )
    fig.update_xaxes(type="log")
    fig.update_yaxes(range=[0, max_entropy * 1.08])
    return fig


def _class_heatmap(
    colors: np.ndarray,
    cell_text: np.ndarray,
    class_names: list[str],
    *,
    customdata: np.ndarray,
    hovertemplate: str,
    colorbar_title: str,
    **heatmap: Any,
) -> go.Figure:
    """A (K, K) heatmap over classes: rows are true classes (top to bottom), square cells, optional text."""
    show_text = len(class_names) <= _MAX_ANNOTATED_CLASSES
    fig = go.Figure(
        go.Heatmap(
            z=colors,
            x=class_names,
            y=class_names,
            text=cell_text if show_text else None,
            texttemplate="%{text}" if show_text else None,
            textfont={"size": 10},
            customdata=customdata,
            hovertemplate=hovertemplate,
            colorscale=_HEATMAP_SCALE,
            colorbar={"title": {"text": colorbar_title}, "tickformat": ".1%"},
            xgap=1,
            ygap=1,
            **heatmap,
        )
    )
    # constrain="domain" shrinks the plot to square cells instead of padding it with empty space.
    fig.update_xaxes(type="category", tickangle=0, constrain="domain")
    fig.update_yaxes(type="category", autorange="reversed", scaleanchor="x", constrain="domain")
    return fig


def dark_knowledge_figure(
    matrix: ArrayLike,
    class_names: Sequence[str],
    hide_diagonal: bool,
    temperature: float,
) -> go.Figure:
    """Heatmap of where the teacher's soft-target mass goes: row = true class, column = class it leans to.

    `matrix` (K, K) holds mean soft-target probabilities per true class. With `hide_diagonal`, the diagonal
    (the correct class, which dominates) is left blank so the colour scale spreads over the rest.
    """
    names = _names(class_names)
    values = _array(matrix, "matrix", (len(names), len(names)))  # (K, K)
    temperature = _positive(temperature, "temperature")
    if hide_diagonal:
        values = values.copy()
        np.fill_diagonal(values, np.nan)
    cell_text = np.where(np.isnan(values), "", np.char.mod("%.1f%%", np.nan_to_num(values) * 100))
    fig = _class_heatmap(
        values,
        cell_text,
        names,
        customdata=values,
        hovertemplate="true %{y} → teacher leans to %{x}: %{z:.2%}<extra></extra>",
        colorbar_title="mean probability",
    )
    hidden = ", correct class hidden" if hide_diagonal else ""
    title = f"Dark knowledge at T = {temperature:g}: where the teacher's probability goes{hidden}"
    return _categorical_classes(
        _layout(fig, title=title, x_title="class the teacher leans to", y_title="true class", show_grid=False)
    )


def similar_pairs_table(pairs: Sequence[tuple[int, int, float]], class_names: Sequence[str]) -> pd.DataFrame:
    """The most confusable class pairs as a table: "class A", "class B", "shared mass" (a probability)."""
    names = _names(class_names)
    rows = [
        {
            "class A": names[_class_index(a, "pairs (class A)", len(names))],
            "class B": names[_class_index(b, "pairs (class B)", len(names))],
            "shared mass": float(mass),
        }
        for a, b, mass in pairs
    ]
    return pd.DataFrame(rows, columns=["class A", "class B", "shared mass"])


def smoothing_vs_soft_figure(
    class_names: Sequence[str],
    soft_targets: ArrayLike,
    smoothed: ArrayLike,
    label: int,
    entropy: float,
) -> go.Figure:
    """Teacher soft targets next to label smoothing with the same entropy: similar classes vs equal mass.

    Both are probability vectors of shape (K,); the true `label` is shown in bold.
    """
    names = _names(class_names)
    soft = _array(soft_targets, "soft_targets", (len(names),))
    smooth = _array(smoothed, "smoothed", (len(names),))
    label = _class_index(label, "label", len(names))
    fig = go.Figure(
        [
            _bar(names, soft, "teacher soft targets", TEACHER_COLOR, _PROBABILITY_VALUE),
            _bar(names, smooth, "label smoothing (same entropy)", LABEL_COLOR, _PROBABILITY_VALUE),
        ]
    )
    title = f"Same entropy ({entropy:.2f} nats), different knowledge: the teacher favours similar classes"
    _layout(fig, title=title, x_title="class (true label in bold)", y_title="probability", barmode="group")
    _emphasise_classes(fig, names, [label])
    fig.update_yaxes(range=[0, 1.02])
    _categorical_classes(fig)
    return fig


def gradient_figure(
    class_names: Sequence[str],
    gradient_unscaled: ArrayLike,
    gradient_scaled: ArrayLike,
    logit_matching: ArrayLike | None,
    temperature: float,
) -> go.Figure:
    """Gradient of the soft loss w.r.t. each student logit, without and with the T² factor (shapes (K,)).

    If given, `logit_matching` (K,) is the high-temperature limit (z_student − z_teacher) / K.
    """
    names = _names(class_names)
    unscaled = _array(gradient_unscaled, "gradient_unscaled", (len(names),))
    scaled = _array(gradient_scaled, "gradient_scaled", (len(names),))
    temperature = _positive(temperature, "temperature")
    fig = go.Figure(
        [
            _bar(
                names,
                unscaled,
                "without T² (shrinks as 1/T²)",
                DISTILLED_COLOR,
                _GRADIENT_VALUE,
                opacity=0.45,
            ),
            _bar(names, scaled, "with T² (what training uses)", DISTILLED_COLOR, _GRADIENT_VALUE),
        ]
    )
    if logit_matching is not None:
        matching = _array(logit_matching, "logit_matching", (len(names),))
        fig.add_trace(_bar(names, matching, "logit matching (z_s − z_t) / K", ACCENT_COLOR, _GRADIENT_VALUE))
    title = f"Soft-loss gradient per class at T = {temperature:g}: the T² factor restores its size"
    y_title = "∂ soft loss / ∂ student logit (nats per logit unit)"
    return _categorical_classes(_layout(fig, title=title, x_title="class", y_title=y_title, barmode="group"))


def logit_matching_figure(
    temperatures: ArrayLike,
    distances: ArrayLike,
    current_temperature: float,
) -> go.Figure:
    """Log-log: relative distance between the T²-scaled soft gradient and logit matching as T grows."""
    temps = _temperatures(temperatures)
    values = _array(distances, "distances", (temps.size,))
    if np.any(values <= 0):
        raise ValueError("distances must be positive to go on a log axis")
    current = _positive(current_temperature, "current_temperature")
    # Interpolate in log-log space so the marker sits on the straight segments the chart draws.
    current_distance = math.exp(_interp_log_x(temps, np.log(values), current))
    hover = "T = %{x:.3g}<br>relative distance = %{y:.3g}<extra></extra>"
    fig = go.Figure(
        [
            go.Scatter(x=temps, y=values, mode="lines", name="distance", line={"color": DISTILLED_COLOR, "width": 3}),
            go.Scatter(
                x=[current],
                y=[current_distance],
                mode="markers+text",
                name=f"current T = {current:g}",
                marker={"color": DISTILLED_COLOR, "size": 13, "line": {"width": 2, "color": "white"}},
                text=[f"T = {current:g}"],
                textposition="top right",
            ),
        ]
    )
    fig.update_traces(hovertemplate=hover)
    title = "At high T, distillation becomes logit matching"
    y_title = "relative distance ‖T²·g_soft − g_logit‖ / ‖g_logit‖ (log scale)"
    _layout(fig, title=title, x_title=_TEMPERATURE_TITLE, y_title=y_title, showlegend=False)
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


# ----------------------------------------------------------------------------------------------------
# Training charts
# ----------------------------------------------------------------------------------------------------


def _history_trace(
    history: Sequence[Mapping[str, Any]],
    key: str,
    *,
    name: str,
    color: str,
    dash: str,
    as_percent: bool,
) -> go.Scatter | None:
    """One line from the events that carry `key` (None or missing values are skipped); None if none do."""
    for position, event in enumerate(history):
        if "epoch" not in event:
            raise ValueError(f"history[{position}] has no 'epoch'; every event needs one")
    events = [event for event in history if event.get(key) is not None]
    if not events:
        return None
    values = np.array([event[key] for event in events], dtype=float)
    y = _percent(values, f"history values of {key!r}", (None,)) if as_percent else values
    value = "%{y:.2f}%" if as_percent else "%{y:.4f} nats"
    return go.Scatter(
        x=[event["epoch"] for event in events],
        y=y,
        mode="lines+markers",
        name=name,
        line={"color": color, "dash": dash, "width": 2.5},
        marker={"size": 5},
        customdata=[str(event.get("step", "–")) for event in events],
        hovertemplate=f"epoch %{{x:.2~f}}, step %{{customdata}}: {value}<extra>{name}</extra>",
    )


def _history_figure(
    traces: Sequence[go.Scatter | None],
    *,
    title: str,
    y_title: str,
    empty_text: str,
) -> go.Figure:
    """A line chart over epochs; with no data it keeps its axes and shows `empty_text`."""
    fig = go.Figure([trace for trace in traces if trace is not None])
    _layout(fig, title=title, x_title="epoch", y_title=y_title, hovermode="x unified")
    if not fig.data:
        _note(fig, empty_text)
        fig.update_xaxes(range=[0, 1])
    return fig


def accuracy_figure(history: Sequence[Mapping[str, Any]], title: str = "Accuracy while training") -> go.Figure:
    """The live training chart: baseline and distilled accuracy in percent, test solid and validation dashed.

    `history` is a list of events with "epoch" (int, or float for mid-epoch progress), "step" and the keys
    baseline_/distilled_ + val_/test_accuracy (fractions in [0, 1], or None when not evaluated at that event).
    """
    traces = [
        _history_trace(history, key, name=name, color=color, dash=dash, as_percent=True)
        for key, name, color, dash in _ACCURACY_SERIES
    ]
    fig = _history_figure(traces, title=title, y_title="accuracy (%)", empty_text="waiting for the first epoch…")
    fig.update_yaxes(ticksuffix="%", autorangeoptions=_PERCENT_AUTORANGE)
    if not fig.data:
        fig.update_yaxes(range=[0, 100])
    return fig


def loss_figure(history: Sequence[Mapping[str, Any]], log_y: bool = False) -> go.Figure:
    """Loss parts while training: baseline hard loss, distilled hard, soft (T²·KL) and total loss, in nats.

    Keys that are missing or None in an event are skipped; `log_y` puts the loss on a log axis.
    """
    traces = [
        _history_trace(history, key, name=name, color=color, dash=dash, as_percent=False)
        for key, name, color, dash in _LOSS_SERIES
    ]
    y_title = "loss (nats, log scale)" if log_y else "loss (nats)"
    fig = _history_figure(
        traces, title="Loss while training", y_title=y_title, empty_text="waiting for the first epoch…"
    )
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def per_class_accuracy_figure(
    class_names: Sequence[str],
    baseline: ArrayLike,
    distilled: ArrayLike,
    bias_corrected: ArrayLike | None,
    highlight_classes: Sequence[int] = (),
) -> go.Figure:
    """Per-class accuracy in percent for baseline, distilled and (optionally) bias-corrected students.

    Accuracies are fractions of shape (K,). `highlight_classes` (e.g. the digit left out of the transfer
    set) get a shaded band and a bold tick label.
    """
    names = _names(class_names)
    fig = go.Figure(
        [
            _bar(
                names,
                _percent(baseline, "baseline", (len(names),)),
                "baseline",
                BASELINE_COLOR,
                _PERCENT_VALUE,
            ),
            _bar(
                names,
                _percent(distilled, "distilled", (len(names),)),
                "distilled",
                DISTILLED_COLOR,
                _PERCENT_VALUE,
            ),
        ]
    )
    if bias_corrected is not None:
        corrected = _percent(bias_corrected, "bias_corrected", (len(names),))
        fig.add_trace(_bar(names, corrected, "distilled + bias shift", BIAS_CORRECTED_COLOR, _PERCENT_VALUE))
    highlighted = [_class_index(k, "highlight_classes", len(names)) for k in highlight_classes]
    for k in highlighted:
        # Category axes place class k at position k, so the band spans k ± 0.5.
        fig.add_vrect(x0=k - 0.5, x1=k + 0.5, fillcolor=_REFERENCE, opacity=0.18, line_width=0, layer="below")
    _layout(fig, title="Accuracy per class", x_title="class", y_title="accuracy (%)", barmode="group")
    _emphasise_classes(fig, names, highlighted)
    fig.update_yaxes(range=[0, 102], ticksuffix="%")
    _categorical_classes(fig)
    return fig


def confusion_figure(matrix: ArrayLike, class_names: Sequence[str], title: str = "Confusion matrix") -> go.Figure:
    """Confusion matrix from counts (K, K): rows are true classes, columns predictions.

    Colour is the share of the row (so rare classes are as visible as common ones); cells show the counts.
    """
    names = _names(class_names)
    counts = _array(matrix, "matrix", (len(names), len(names)))  # (K, K)
    if np.any(counts < 0):
        raise ValueError("matrix must hold non-negative counts")
    row_totals = counts.sum(axis=1, keepdims=True)  # (K, 1)
    shares = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)
    fig = _class_heatmap(
        shares,
        np.char.mod("%d", counts.round()),
        names,
        customdata=counts,
        hovertemplate="true %{y}, predicted %{x}: %{customdata:,.0f} (%{z:.1%} of row)<extra></extra>",
        colorbar_title="share of row",
        zmin=0.0,
        zmax=1.0,
    )
    return _categorical_classes(
        _layout(fig, title=title, x_title="predicted class", y_title="true class", show_grid=False)
    )


# ----------------------------------------------------------------------------------------------------
# Comparing runs and seeds
# ----------------------------------------------------------------------------------------------------


def runs_overlay_figure(
    runs: Sequence[tuple[str, Sequence[Mapping[str, Any]]]],
    metric: str = "distilled_test_accuracy",
) -> go.Figure:
    """One curve per run for a history `metric` (an accuracy in percent, or a loss in nats).

    Runs take colours in list order, the same as in `runs_per_class_figure`.
    """
    if metric not in _METRIC_NAMES:
        raise ValueError(f"metric must be one of {sorted(_METRIC_NAMES)}, got {metric!r}")
    as_percent = metric.endswith("_accuracy")
    traces = []
    for index, (label, history) in enumerate(runs):
        color, dash = _style(index)
        traces.append(_history_trace(history, metric, name=str(label), color=color, dash=dash, as_percent=as_percent))
    y_title = "accuracy (%)" if as_percent else "loss (nats)"
    title = f"{_METRIC_NAMES[metric]} across runs"
    fig = _history_figure(traces, title=title, y_title=y_title, empty_text="no run has data for this metric yet")
    if as_percent:
        fig.update_yaxes(ticksuffix="%", autorangeoptions=_PERCENT_AUTORANGE)
    return fig


def runs_per_class_figure(runs: Sequence[tuple[str, Sequence[float]]], class_names: Sequence[str]) -> go.Figure:
    """Per-class accuracy (fractions (K,), shown in percent) as grouped bars, one colour per run."""
    names = _names(class_names)
    fig = go.Figure()
    for index, (label, accuracies) in enumerate(runs):
        percent = _percent(accuracies, f"accuracies of run {label!r}", (len(names),))
        fig.add_trace(_bar(names, percent, str(label), _style(index)[0], _PERCENT_VALUE))
    _layout(fig, title="Accuracy per class across runs", x_title="class", y_title="accuracy (%)", barmode="group")
    fig.update_yaxes(range=[0, 102], ticksuffix="%")
    _categorical_classes(fig)
    return fig


def seeds_gain_figure(gains: Sequence[float]) -> go.Figure:
    """Gain of distillation per seed (distilled − baseline test accuracy, percentage points), mean ± std.

    The std is the sample standard deviation (ddof = 1); a single seed has none, which the title says.
    """
    values = _array(gains, "gains", (None,))
    if values.size == 0:
        raise ValueError("gains must hold at least one value (one per seed)")
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    fig = go.Figure(
        go.Scatter(
            x=np.arange(1, values.size + 1),
            y=values,
            mode="markers",
            name="one seed",
            marker={"color": DISTILLED_COLOR, "size": 12, "line": {"width": 1.5, "color": "white"}},
            hovertemplate="seed %{x}: %{y:+.2f} points<extra></extra>",
        )
    )
    fig.add_hrect(y0=mean - std, y1=mean + std, fillcolor=DISTILLED_COLOR, opacity=0.15, line_width=0)
    fig.add_hline(y=mean, line={"color": DISTILLED_COLOR, "width": 2}, annotation_text=f"mean {mean:+.2f}")
    fig.add_hline(y=0, line={"color": _REFERENCE, "dash": "dot"}, annotation_text="no gain")
    spread = f"± {std:.2f} (std)" if values.size > 1 else "(one seed: no spread; a single run is noise)"
    title = f"Gain from distillation over {values.size} seed(s): {mean:+.2f} {spread} points"
    y_title = "gain: distilled − baseline (percentage points)"
    _layout(fig, title=title, x_title="seed (run number)", y_title=y_title, showlegend=False)
    fig.update_xaxes(dtick=1)
    return fig


def image_figure(pixels: ArrayLike, title: str = "") -> go.Figure:
    """Show an image without axes: (H, W) in greyscale or (H, W, 3) RGB; uint8 (0-255) or float.

    Floats in [0, 1] are shown on that scale; other float greyscale images are stretched from min to max.
    """
    image = _np(pixels)
    if image.ndim == 3 and image.shape[2] == 3:
        fig = go.Figure(go.Image(z=_rgb_uint8(image), hovertemplate="row %{y}, col %{x}: %{z}<extra></extra>"))
    elif image.ndim == 2:
        low, high = (0.0, 255.0) if image.dtype == np.uint8 else _float_range(image.astype(float))
        fig = go.Figure(
            go.Heatmap(
                z=image,
                zmin=low,
                zmax=high,
                colorscale=_GREYSCALE,
                showscale=False,
                hovertemplate="row %{y}, col %{x}: %{z:.3g}<extra></extra>",
            )
        )
        fig.update_yaxes(autorange="reversed", scaleanchor="x")
    else:
        raise ValueError(f"pixels must have shape (H, W) or (H, W, 3), got {image.shape}")
    _layout(fig, title=title, x_title="", y_title="", show_grid=False)
    fig.update_layout(margin={"l": 8, "r": 8, "t": 40 if title else 8, "b": 8})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _float_range(image: np.ndarray) -> tuple[float, float]:
    """[0, 1] for images already on that scale, otherwise the data's own range."""
    low, high = float(np.nanmin(image)), float(np.nanmax(image))
    if 0.0 <= low and high <= 1.0:
        return 0.0, 1.0
    return low, high if high > low else low + 1.0


def _rgb_uint8(image: np.ndarray) -> np.ndarray:
    """RGB as uint8, which go.Image expects; floats must be in [0, 1]."""
    if image.dtype == np.uint8:
        return image
    values = image.astype(float)
    if np.any((values < 0) | (values > 1)):
        raise ValueError("pixels: float RGB images must be in [0, 1]; pass uint8 for 0-255 values")
    return (values * 255).round().astype(np.uint8)
