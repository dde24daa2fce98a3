"""Tests for distill_core.viz: each builder's traces carry the data given, in the agreed colours and units."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from distill_core import viz

NAMES = ["cat", "dog", "car", "ship"]
K = len(NAMES)
PROBS_T = np.array([0.4, 0.3, 0.2, 0.1])
PROBS_1 = np.array([0.85, 0.1, 0.04, 0.01])
TEMPS = np.array([0.1, 0.5, 1.0, 2.0, 5.0, 20.0, 100.0])
ENTROPIES = np.array([0.0, 0.3, 0.7, 1.0, 1.2, 1.35, 1.38])


def _history() -> list[dict]:
    """Validation every half epoch, test only at the end of an epoch (None in between)."""
    return [
        {"epoch": 0.5, "step": 10, "baseline_val_accuracy": 0.80, "distilled_val_accuracy": 0.82,
         "baseline_test_accuracy": None, "distilled_test_accuracy": None,
         "baseline_hard_loss": 0.9, "distilled_hard_loss": 1.0, "distilled_soft_loss": 0.4},
        {"epoch": 1, "step": 20, "baseline_val_accuracy": 0.85, "distilled_val_accuracy": 0.875,
         "baseline_test_accuracy": 0.84, "distilled_test_accuracy": 0.861,
         "baseline_hard_loss": 0.5, "distilled_hard_loss": 0.6, "distilled_soft_loss": 0.2,
         "distilled_total_loss": 0.3},
    ]  # fmt: skip


def _trace(fig: go.Figure, name: str) -> go.Scatter | go.Bar:
    matches = [trace for trace in fig.data if trace.name == name]
    assert len(matches) == 1, [trace.name for trace in fig.data]
    return matches[0]


def _relative_luminance(hex_color: str) -> float:
    channels = [int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(first: str, second: str) -> float:
    high, low = sorted([_relative_luminance(first), _relative_luminance(second)], reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize(
    "color",
    [viz.BASELINE_COLOR, viz.DISTILLED_COLOR, viz.TEACHER_COLOR, viz.LABEL_COLOR, viz.BIAS_CORRECTED_COLOR],
)
@pytest.mark.parametrize("background", ["#FFFFFF", "#0E1117"])  # Streamlit's light and dark backgrounds
def test_semantic_colours_are_visible_on_light_and_dark_themes(color, background):
    # WCAG asks 3:1 for graphical objects such as bars and lines.
    assert _contrast(color, background) >= 3.0


def test_semantic_colours_are_distinct():
    colours = [
        viz.BASELINE_COLOR,
        viz.DISTILLED_COLOR,
        viz.TEACHER_COLOR,
        viz.LABEL_COLOR,
        viz.BIAS_CORRECTED_COLOR,
    ]
    assert len(set(colours)) == len(colours)


def test_soft_targets_bars_carry_label_and_both_temperatures():
    fig = viz.soft_targets_figure(NAMES, PROBS_T, PROBS_1, label=0, temperature=4.0)
    assert [type(trace) for trace in fig.data] == [go.Bar] * 3
    label, at_1, at_t = fig.data
    np.testing.assert_array_equal(label.y, [1, 0, 0, 0])
    np.testing.assert_allclose(at_1.y, PROBS_1)
    np.testing.assert_allclose(at_t.y, PROBS_T)
    assert list(at_t.x) == NAMES
    assert label.marker.color == viz.LABEL_COLOR
    assert at_t.marker.color == viz.TEACHER_COLOR
    assert "T = 4" in at_t.name
    assert fig.layout.xaxis.title.text == "class"
    assert fig.layout.yaxis.title.text == "probability"
    assert fig.layout.barmode == "group"


def test_soft_targets_without_label_has_two_traces():
    fig = viz.soft_targets_figure(NAMES, PROBS_T, PROBS_1, label=None, temperature=2.0)
    assert len(fig.data) == 2


def test_soft_targets_accepts_torch_tensors():
    import torch

    fig = viz.soft_targets_figure(NAMES, torch.tensor(PROBS_T), torch.tensor(PROBS_1), label=None, temperature=2.0)
    np.testing.assert_allclose(fig.data[1].y, PROBS_T)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"label": 7}, "label"),
        ({"probs_at_t": np.ones(3) / 3}, "probs_at_t"),
        ({"temperature": 0.0}, "temperature"),
    ],
)
def test_soft_targets_rejects_bad_input_naming_the_argument(kwargs, argument):
    arguments = {
        "class_names": NAMES,
        "probs_at_t": PROBS_T,
        "probs_at_1": PROBS_1,
        "label": 1,
        "temperature": 2.0,
    }
    with pytest.raises(ValueError, match=argument):
        viz.soft_targets_figure(**{**arguments, **kwargs})


def test_entropy_curve_has_log_axis_max_line_and_current_marker():
    fig = viz.entropy_curve_figure(TEMPS, ENTROPIES, current_temperature=5.0, num_classes=K)
    curve, marker = fig.data
    np.testing.assert_allclose(curve.y, ENTROPIES)
    np.testing.assert_allclose(curve.customdata, ENTROPIES / math.log(K))
    # 5.0 is a sampled temperature, so the marker must sit exactly on that sample.
    assert marker.x == (5.0,)
    assert marker.y[0] == pytest.approx(1.2)
    assert fig.layout.xaxis.type == "log"
    assert "nats" in fig.layout.yaxis.title.text
    assert "temperature" in fig.layout.xaxis.title.text
    (max_line,) = fig.layout.shapes
    assert max_line.y0 == max_line.y1 == pytest.approx(math.log(K))
    assert max_line.line.dash == "dash"
    assert any("maximum (uniform)" in note.text for note in fig.layout.annotations)
    assert "of log K" in curve.hovertemplate


def test_entropy_curve_interpolates_marker_along_log_temperature():
    # Halfway between T = 1 and T = 100 in log space is T = 10.
    fig = viz.entropy_curve_figure([1.0, 100.0], [0.5, 1.5], current_temperature=10.0, num_classes=K)
    assert fig.data[1].y[0] == pytest.approx(1.0)


def test_entropy_curve_rejects_one_class():
    with pytest.raises(ValueError, match="num_classes"):
        viz.entropy_curve_figure(TEMPS, ENTROPIES, current_temperature=1.0, num_classes=1)


def test_softmax_animation_has_a_frame_per_temperature_and_play_controls():
    temperatures = np.array([0.5, 1.0, 2.5])
    probs = np.array([[0.9, 0.05, 0.03, 0.02], [0.7, 0.2, 0.06, 0.04], [0.4, 0.3, 0.2, 0.1]])
    fig = viz.softmax_animation_figure(NAMES, temperatures, probs)
    assert len(fig.frames) == 3
    assert [frame.name for frame in fig.frames] == ["T = 0.5", "T = 1", "T = 2.5"]
    for frame, row in zip(fig.frames, probs, strict=True):
        np.testing.assert_allclose(frame.data[0].y, row)
    # Opens at T = 1, the ordinary softmax.
    np.testing.assert_allclose(fig.data[0].y, probs[1])
    assert fig.layout.sliders[0].active == 1
    buttons = fig.layout.updatemenus[0].buttons
    play = [button for button in buttons if "Play" in button.label]
    assert len(play) == 1 and play[0].method == "animate" and play[0].args[0] is None
    assert any("Pause" in button.label for button in buttons)
    steps = fig.layout.sliders[0].steps
    assert [step.label for step in steps] == ["T = 0.5", "T = 1", "T = 2.5"]
    assert all(step.method == "animate" for step in steps)
    assert tuple(fig.layout.yaxis.range) == (0, 1)


def test_softmax_animation_sorts_frames_by_temperature():
    fig = viz.softmax_animation_figure(NAMES, [4.0, 0.2], np.array([[0.25] * 4, [1.0, 0, 0, 0]]))
    assert [frame.name for frame in fig.frames] == ["T = 0.2", "T = 4"]
    np.testing.assert_allclose(fig.frames[0].data[0].y, [1.0, 0, 0, 0])


def test_softmax_animation_rejects_mismatched_rows():
    with pytest.raises(ValueError, match="probs"):
        viz.softmax_animation_figure(NAMES, [1.0, 2.0], np.full((3, K), 0.25))


def test_dataset_entropy_draws_mean_bold_and_per_class_thin():
    per_class = np.vstack([ENTROPIES * (k + 1) / K for k in range(K)])  # (K, M)
    fig = viz.dataset_entropy_figure(TEMPS, ENTROPIES, per_class, NAMES, current_temperature=2.0)
    mean = _trace(fig, "all examples (mean)")
    np.testing.assert_allclose(mean.y, ENTROPIES)
    class_lines = [trace for trace in fig.data if trace.legendgroup == "per class"]
    assert [trace.name for trace in class_lines] == NAMES
    for line, row in zip(class_lines, per_class, strict=True):
        np.testing.assert_allclose(line.y, row)
        assert line.line.width < mean.line.width
    current = _trace(fig, "current T = 2")
    assert set(current.x) == {2.0}
    assert fig.layout.xaxis.type == "log"
    assert fig.layout.legend.groupclick == "toggleitem"


def test_dataset_entropy_without_per_class_has_mean_and_current_line_only():
    fig = viz.dataset_entropy_figure(TEMPS, ENTROPIES, None, NAMES, current_temperature=2.0)
    assert len(fig.data) == 2


def test_dataset_entropy_rejects_wrong_per_class_shape():
    with pytest.raises(ValueError, match="per_class"):
        viz.dataset_entropy_figure(TEMPS, ENTROPIES, np.zeros((K, 3)), NAMES, current_temperature=2.0)


def _mean_soft_targets() -> np.ndarray:
    matrix = np.full((K, K), 0.05) + np.eye(K) * 0.8
    matrix[0, 1] = 0.1
    return matrix


def test_dark_knowledge_hides_diagonal_with_nan_and_keeps_the_rest():
    matrix = _mean_soft_targets()
    fig = viz.dark_knowledge_figure(matrix, NAMES, hide_diagonal=True, temperature=4.0)
    (heatmap,) = fig.data
    z = np.array(heatmap.z, dtype=float)
    assert np.isnan(np.diag(z)).all()
    off_diagonal = ~np.eye(K, dtype=bool)
    np.testing.assert_allclose(z[off_diagonal], matrix[off_diagonal])
    assert heatmap.text[0][1] == "10.0%" and heatmap.text[0][0] == ""
    assert matrix[0, 0] == pytest.approx(0.85)  # the caller's array is not modified
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.yaxis.title.text == "true class"


def test_dark_knowledge_shows_diagonal_when_asked():
    fig = viz.dark_knowledge_figure(_mean_soft_targets(), NAMES, hide_diagonal=False, temperature=4.0)
    np.testing.assert_allclose(np.diag(np.array(fig.data[0].z, dtype=float)), 0.85)


def test_similar_pairs_table_names_the_classes():
    table = viz.similar_pairs_table([(0, 1, 0.12), (2, 3, 0.05)], NAMES)
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["class A", "class B", "shared mass"]
    assert table.iloc[0].tolist() == ["cat", "dog", 0.12]
    assert len(viz.similar_pairs_table([], NAMES)) == 0
    with pytest.raises(ValueError, match="pairs"):
        viz.similar_pairs_table([(0, 9, 0.1)], NAMES)


def test_smoothing_vs_soft_puts_both_at_the_same_entropy():
    smoothed = np.array([0.7, 0.1, 0.1, 0.1])
    fig = viz.smoothing_vs_soft_figure(NAMES, PROBS_T, smoothed, label=0, entropy=1.234)
    soft, smooth = fig.data
    np.testing.assert_allclose(soft.y, PROBS_T)
    np.testing.assert_allclose(smooth.y, smoothed)
    assert soft.marker.color == viz.TEACHER_COLOR
    assert smooth.marker.color == viz.LABEL_COLOR
    assert "1.23 nats" in fig.layout.title.text
    assert fig.layout.xaxis.ticktext[0] == "<b>cat</b>" and fig.layout.xaxis.ticktext[1] == "dog"


def test_gradient_figure_shows_scaled_unscaled_and_logit_matching():
    unscaled = np.array([0.01, -0.02, 0.005, 0.005])
    fig = viz.gradient_figure(NAMES, unscaled, unscaled * 16, np.array([0.1, -0.3, 0.1, 0.1]), temperature=4.0)
    assert len(fig.data) == 3
    np.testing.assert_allclose(fig.data[0].y, unscaled)
    np.testing.assert_allclose(fig.data[1].y, unscaled * 16)
    assert fig.data[0].marker.color == fig.data[1].marker.color == viz.DISTILLED_COLOR
    assert "T = 4" in fig.layout.title.text
    assert len(viz.gradient_figure(NAMES, unscaled, unscaled, None, temperature=4.0).data) == 2


def test_logit_matching_is_log_log_with_marker_on_the_curve():
    temperatures = np.array([1.0, 10.0, 100.0])
    distances = 1 / temperatures**2
    fig = viz.logit_matching_figure(temperatures, distances, current_temperature=3.0)
    curve, marker = fig.data
    np.testing.assert_allclose(curve.y, distances)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    # A power law is a straight line in log-log space, so the marker must land exactly on 1 / T².
    assert marker.y[0] == pytest.approx(1 / 9)


def test_logit_matching_rejects_non_positive_distances():
    with pytest.raises(ValueError, match="distances"):
        viz.logit_matching_figure([1.0, 2.0], [0.1, 0.0], current_temperature=1.0)


def test_accuracy_figure_converts_to_percent_and_keeps_colours():
    fig = viz.accuracy_figure(_history())
    assert len(fig.data) == 4
    baseline_val = _trace(fig, "baseline · validation")
    distilled_test = _trace(fig, "distilled · test")
    assert list(baseline_val.x) == [0.5, 1]
    np.testing.assert_allclose(baseline_val.y, [80.0, 85.0])
    # Test accuracy was None at the half-epoch event, so only one point.
    assert list(distilled_test.x) == [1]
    np.testing.assert_allclose(distilled_test.y, [86.1])
    for trace in fig.data:
        expected = viz.BASELINE_COLOR if trace.name.startswith("baseline") else viz.DISTILLED_COLOR
        assert trace.line.color == expected
        assert trace.line.dash == ("dash" if "validation" in trace.name else "solid")
    assert fig.layout.yaxis.title.text == "accuracy (%)"
    assert fig.layout.xaxis.title.text == "epoch"


def test_accuracy_figure_with_empty_history_keeps_axes_and_waits():
    fig = viz.accuracy_figure([])
    assert len(fig.data) == 0
    assert any("waiting" in note.text for note in fig.layout.annotations)
    assert fig.layout.yaxis.title.text == "accuracy (%)"
    assert tuple(fig.layout.yaxis.range) == (0, 100)
    json.loads(fig.to_json())


def test_accuracy_figure_rejects_percentages_and_events_without_epoch():
    with pytest.raises(ValueError, match="fractions"):
        viz.accuracy_figure([{"epoch": 1, "step": 1, "baseline_test_accuracy": 95.0}])
    with pytest.raises(ValueError, match="epoch"):
        viz.accuracy_figure([{"step": 1, "baseline_test_accuracy": 0.9}])


def test_loss_figure_draws_present_parts_and_skips_missing():
    fig = viz.loss_figure(_history(), log_y=True)
    assert len(fig.data) == 4
    total = _trace(fig, "distilled · total")
    assert list(total.x) == [1]  # missing at the first event
    np.testing.assert_allclose(_trace(fig, "baseline · hard (CE)").y, [0.9, 0.5])
    assert _trace(fig, "baseline · hard (CE)").line.color == viz.BASELINE_COLOR
    assert total.line.color == viz.DISTILLED_COLOR
    assert fig.layout.yaxis.type == "log"
    assert "nats" in fig.layout.yaxis.title.text
    assert len(viz.loss_figure([]).data) == 0


def test_per_class_accuracy_in_percent_with_highlighted_class():
    baseline = np.array([0.9, 0.0, 0.8, 1.0])
    distilled = np.array([0.92, 0.5, 0.81, 1.0])
    corrected = np.array([0.91, 0.75, 0.8, 0.99])
    fig = viz.per_class_accuracy_figure(NAMES, baseline, distilled, corrected, highlight_classes=[1])
    assert [trace.marker.color for trace in fig.data] == [
        viz.BASELINE_COLOR,
        viz.DISTILLED_COLOR,
        viz.BIAS_CORRECTED_COLOR,
    ]
    for trace, fractions in zip(fig.data, [baseline, distilled, corrected], strict=True):
        np.testing.assert_allclose(trace.y, fractions * 100)
    (band,) = fig.layout.shapes
    assert (band.x0, band.x1) == (0.5, 1.5)
    assert fig.layout.xaxis.ticktext[1] == "<b>dog</b>"
    assert fig.layout.yaxis.title.text == "accuracy (%)"
    with pytest.raises(ValueError, match="highlight_classes"):
        viz.per_class_accuracy_figure(NAMES, baseline, distilled, None, highlight_classes=[K])


def test_confusion_colours_by_row_share_and_labels_with_counts():
    counts = np.array([[8, 2, 0, 0], [1, 3, 0, 0], [0, 0, 0, 0], [0, 0, 5, 5]])
    fig = viz.confusion_figure(counts, NAMES, title="Distilled student")
    (heatmap,) = fig.data
    expected = np.zeros((K, K))
    for row in range(K):
        if counts[row].sum():
            expected[row] = counts[row] / counts[row].sum()
    np.testing.assert_allclose(np.array(heatmap.z, dtype=float), expected)
    assert heatmap.text[0][0] == "8" and heatmap.text[3][2] == "5"
    assert (heatmap.zmin, heatmap.zmax) == (0.0, 1.0)
    assert fig.layout.title.text == "Distilled student"
    assert fig.layout.xaxis.title.text == "predicted class"


def test_runs_share_colours_across_overlay_and_per_class():
    runs = [("T=4", _history()), ("T=8", _history())]
    overlay = viz.runs_overlay_figure(runs)
    per_class = viz.runs_per_class_figure([("T=4", [0.9] * K), ("T=8", [0.5] * K)], NAMES)
    assert [trace.name for trace in overlay.data] == ["T=4", "T=8"]
    overlay_colours = [trace.line.color for trace in overlay.data]
    assert overlay_colours == [trace.marker.color for trace in per_class.data] == list(viz.RUN_COLORS[:2])
    np.testing.assert_allclose(overlay.data[0].y, [86.1])
    np.testing.assert_allclose(per_class.data[1].y, [50.0] * K)


def test_runs_overlay_for_a_loss_metric_stays_in_nats():
    fig = viz.runs_overlay_figure([("a", _history())], metric="distilled_soft_loss")
    np.testing.assert_allclose(fig.data[0].y, [0.4, 0.2])
    assert fig.layout.yaxis.title.text == "loss (nats)"
    with pytest.raises(ValueError, match="metric"):
        viz.runs_overlay_figure([("a", _history())], metric="accuracy")


def test_image_figure_greyscale_uint8_hides_axes():
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    fig = viz.image_figure(pixels, title="a digit")
    (heatmap,) = fig.data
    assert isinstance(heatmap, go.Heatmap)
    np.testing.assert_array_equal(heatmap.z, pixels)
    assert (heatmap.zmin, heatmap.zmax) == (0.0, 255.0)
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False
    assert fig.layout.yaxis.scaleanchor == "x"


def test_image_figure_rgb_float_becomes_uint8():
    pixels = np.zeros((2, 2, 3))
    pixels[0, 0] = [1.0, 0.5, 0.0]
    fig = viz.image_figure(pixels)
    (image,) = fig.data
    assert isinstance(image, go.Image)
    np.testing.assert_array_equal(image.z[0][0], [255, 128, 0])
    with pytest.raises(ValueError, match="pixels"):
        viz.image_figure(np.zeros((2, 2, 4)))


def test_seeds_gain_band_is_mean_plus_minus_sample_std():
    gains = [0.4, 0.9, -0.1, 0.6]
    fig = viz.seeds_gain_figure(gains)
    np.testing.assert_allclose(fig.data[0].y, gains)
    mean, std = statistics.mean(gains), statistics.stdev(gains)
    (band,) = [shape for shape in fig.layout.shapes if shape.type == "rect"]
    assert band.y0 == pytest.approx(mean - std) and band.y1 == pytest.approx(mean + std)
    lines = sorted(shape.y0 for shape in fig.layout.shapes if shape.type == "line")
    assert lines == pytest.approx([0.0, mean])
    assert f"{mean:+.2f}" in fig.layout.title.text
    assert "points" in fig.layout.yaxis.title.text


def test_seeds_gain_single_seed_and_empty():
    fig = viz.seeds_gain_figure([0.3])
    assert "single run is noise" in fig.layout.title.text
    with pytest.raises(ValueError, match="gains"):
        viz.seeds_gain_figure([])


def _every_figure() -> dict[str, go.Figure]:
    history = _history()
    return {
        "soft_targets": viz.soft_targets_figure(NAMES, PROBS_T, PROBS_1, 0, 2.0),
        "entropy_curve": viz.entropy_curve_figure(TEMPS, ENTROPIES, 2.0, K),
        "animation": viz.softmax_animation_figure(NAMES, TEMPS[:2], np.full((2, K), 0.25)),
        "dataset_entropy": viz.dataset_entropy_figure(TEMPS, ENTROPIES, np.tile(ENTROPIES, (K, 1)), NAMES, 2.0),
        "dark_knowledge": viz.dark_knowledge_figure(_mean_soft_targets(), NAMES, True, 2.0),
        "smoothing": viz.smoothing_vs_soft_figure(NAMES, PROBS_T, PROBS_1, 0, 1.0),
        "gradient": viz.gradient_figure(NAMES, PROBS_T, PROBS_T, PROBS_T, 2.0),
        "logit_matching": viz.logit_matching_figure(TEMPS, 1 / TEMPS, 2.0),
        "accuracy": viz.accuracy_figure(history),
        "loss": viz.loss_figure(history),
        "per_class": viz.per_class_accuracy_figure(NAMES, PROBS_T, PROBS_T, PROBS_T, [0]),
        "confusion": viz.confusion_figure(np.eye(K) * 5, NAMES),
        "runs_overlay": viz.runs_overlay_figure([("a", history)]),
        "runs_per_class": viz.runs_per_class_figure([("a", PROBS_T)], NAMES),
        "image": viz.image_figure(np.zeros((3, 3))),
        "seeds": viz.seeds_gain_figure([0.1, 0.2]),
    }


@pytest.mark.parametrize(("name", "fig"), list(_every_figure().items()))
def test_every_figure_serialises_and_suits_both_themes(name, fig):
    payload = json.loads(fig.to_json())
    layout = payload["layout"]
    assert layout["paper_bgcolor"] == layout["plot_bgcolor"] == "rgba(0,0,0,0)"
    assert "color" not in layout.get("font", {})  # text colour comes from the theme
    if name != "image":
        assert fig.layout.title.text
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
        assert all(trace.hovertemplate or trace.hoverinfo == "skip" for trace in fig.data)


def test_dataset_entropy_rejects_a_single_class_naming_class_names():
    with pytest.raises(ValueError, match="class_names"):
        viz.dataset_entropy_figure(TEMPS, ENTROPIES, None, ["only"], current_temperature=2.0)
