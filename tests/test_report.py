"""The HTML report's plots: readable axes, legends beside the curves."""

import re

import numpy as np
import pytest

from moa_sklearn import _report


def texts(svg):
    """(x, y, anchor, font size, text) of every <text> of an SVG."""
    out = []
    for attrs, body in re.findall(r"<text ([^>]*)>([^<]*)</text>", svg):
        a = dict(re.findall(r'([\w-]+)="([^"]*)"', attrs))
        out.append(
            (
                float(a["x"]),
                float(a["y"]),
                a.get("text-anchor", "start"),
                float(a["font-size"]),
                body,
                "transform" in a,
            )
        )
    return out


def assert_text_inside(svg):
    """No label runs over the edges of its SVG (0.6 em per character)."""
    width = float(re.search(r'width="([\d.]+)"', svg).group(1))
    for x, _, anchor, size, body, rotated in texts(svg):
        if rotated:
            continue
        w = 0.6 * size * len(body)
        left = {"start": x, "middle": x - w / 2, "end": x - w}[anchor]
        assert left >= 0 and left + w <= width, (body, left, left + w, width)


def tick_labels(svg, axis):
    """Tick labels of the x axis (below the plot) or the y axis (left)."""
    found = texts(svg)
    if axis == "x":
        return [t[4] for t in found if t[2] == "middle" and not t[5] and t[3] == 11]
    return [t[4] for t in found if t[2] == "end"]


CURVES = [
    ("training", [(1, 0.72), *[(e, 0.06 - 0.002 * e) for e in range(2, 21)]]),
    ("validation", [(1, 0.69), *[(e, 0.065 - 0.002 * e) for e in range(2, 21)]]),
]


def test_learning_curves_log_scale_ticks_and_legend_beside():
    series = [
        (lab, pts, color, dashed)
        for (lab, pts), color, dashed in zip(CURVES, ("red", "blue"), (False, True))
    ]
    svg = _report._learning_curves(series, "tabnet")
    assert_text_inside(svg)
    xs = tick_labels(svg, "x")
    assert xs and all(x.isdigit() for x in xs) and "20" in xs
    ys = [float(v) for v in tick_labels(svg, "y")]
    assert len(ys) >= 3
    # log scale: the epochs after the first one use a good part of the height
    # (on a linear scale the first epoch would squeeze them into 5% of it)
    points = re.findall(r'points="([^"]*)"', svg)[0].split()
    y = np.array([float(p.split(",")[1]) for p in points])
    assert (y[1:].max() - y[1:].min()) > 0.2 * (y.max() - y.min())
    # the legend is right of every point of every curve
    right = max(
        float(p.split(",")[0])
        for pts in re.findall(r'points="([^"]*)"', svg)
        for p in pts.split()
    )
    legend = [t for t in texts(svg) if t[4] in ("training", "validation")]
    assert len(legend) == 2 and all(t[0] > right for t in legend)


def test_calibration_plot_has_tick_values_on_both_axes():
    rng = np.random.RandomState(0)
    p = rng.uniform(1e-4, 1, size=5000)
    y = rng.uniform(size=5000) < p
    svg = _report._calibration_plot(_report.calibration_bins(y, p))
    assert_text_inside(svg)
    assert tick_labels(svg, "x") == ["0.0001", "0.001", "0.01", "0.1", "1"]
    assert tick_labels(svg, "y") == ["0.0001", "0.001", "0.01", "0.1", "1"]


def test_blend_weights_chart_names_the_models():
    svg = _report._weights_chart(
        ["twostep", "keras", "tabnet"],
        [0.6, 0.3, 0.1],
        [[0.5, 0.7], [0.4, 0.2], [0.1, 0.1]],
    )
    assert_text_inside(svg)
    assert tick_labels(svg, "x") == [
        "twostep (0.600)",
        "keras (0.300)",
        "tabnet (0.100)",
    ]
    assert "target" not in svg
    assert svg.count("<circle") == 6  # one dot per model and fold


@pytest.mark.parametrize("n", [6, 206])
def test_per_target_chart_ranks_targets_with_distinct_ticks(n):
    rng = np.random.RandomState(0)
    losses = rng.uniform(0, 0.1, size=n)
    svg = _report._per_target_chart(losses, [f"moa_{j}" for j in range(n)])
    assert_text_inside(svg)
    xs = [int(v) for v in tick_labels(svg, "x")]
    assert xs[0] == 1 and xs[-1] == n and xs == sorted(set(xs))
    # the ranked bars fall from the worst target to the best
    heights = [
        float(h) for h in re.findall(r'height="([\d.]+)" fill="[^"]*"><title>', svg)
    ]
    assert len(heights) == n and heights == sorted(heights, reverse=True)


def test_tick_values_are_round():
    assert _report._linear_ticks(0, 0.176) == pytest.approx([0, 0.05, 0.1, 0.15])
    assert _report._log_ticks(1e-4, 1) == pytest.approx([1e-4, 1e-3, 1e-2, 0.1, 1])
    assert _report._tick_text(1e-5) == "0.00001"
