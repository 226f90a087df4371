"""HTML report of a ``moa-sklearn cv`` run, with hand-drawn inline SVG plots.

Private helper of :mod:`moa_sklearn.cli` (no plotting library needed).
"""

import datetime
import json
from collections import namedtuple
from html import escape

import numpy as np

from .model_selection import _PROTOCOLS

__all__ = ["write_report", "calibration_bins"]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def calibration_bins(y_true, proba, n_bins=10):
    """Binned calibration on a log scale of the predicted probability.

    Returns a list of dicts ``lo``, ``hi``, ``n``, ``mean_predicted``,
    ``observed`` (the fraction of positives) for the non-empty bins.
    """
    p = np.asarray(proba, dtype=np.float64).ravel()
    y = np.asarray(y_true, dtype=np.float64).ravel()
    edges = np.r_[0.0, np.logspace(-4, 0, n_bins)]
    edges[-1] = 1.0 + 1e-12
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    out = []
    for b in range(len(edges) - 1):
        mask = idx == b
        if mask.any():
            out.append(
                dict(
                    lo=float(edges[b]),
                    hi=float(min(edges[b + 1], 1.0)),
                    n=int(mask.sum()),
                    mean_predicted=float(p[mask].mean()),
                    observed=float(y[mask].mean()),
                )
            )
    return out


def _fmt(x, digits=5):
    return "" if x is None else f"{x:.{digits}f}"


# ----------------------------------------------------------------- plotting
# A plot is an SVG of _W x _H pixels: the plot area leaves room on the left
# for the tick values and the rotated axis label, below for the tick values
# and the axis label, and (for legends) on the right.
_W, _H = 640, 300
_LEFT, _BOTTOM, _TOP, _RIGHT = 78, 48, 14, 16
_FONT = 'font-family="sans-serif"'


def _tick_text(v):
    """A short tick label: 0.0001, 0.02, 0.5, 1, 20."""
    if v == 0:
        return "0"
    text = f"{v:.3g}"
    if "e" in text:  # 1e-05 -> 0.00001 (ticks stay readable, no exponent)
        text = f"{v:.{max(0, -int(np.floor(np.log10(abs(v)))) + 2)}f}".rstrip("0")
    return text


def _linear_ticks(lo, hi, n=5):
    """About ``n`` round tick values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** np.floor(np.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = np.ceil(lo / step - 1e-9) * step
    ticks = np.arange(first, hi + step * 1e-9, step)
    return [float(np.round(v, 12)) for v in ticks]


def _log_ticks(lo, hi):
    """Tick values on a log scale: decades, or 1-2-5 steps in a short range."""
    a, b = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
    for mults in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 4, 5, 7)):
        ticks = [
            m * 10.0**e
            for e in range(a, b + 1)
            for m in mults
            if lo * (1 - 1e-9) <= m * 10.0**e <= hi * (1 + 1e-9)
        ]
        if len(ticks) >= 3:
            return ticks
    return [lo, hi]


_MIDDLE, _END = ' text-anchor="middle"', ' text-anchor="end"'


def _line(x1, y1, x2, y2, stroke, attrs=""):
    """An SVG line; coordinates as given (numbers or formatted strings)."""
    return f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{stroke}"{attrs}/>'


def _text(x, y, size, body, attrs=""):
    """An SVG text of ``body`` (escaped here); coordinates as given."""
    return f'<text x="{x}" y="{y}" font-size="{size}"{attrs}>{escape(body)}</text>'


class _Axis(namedtuple("_Axis", "label lim log ticks", defaults=(False, None))):
    """An axis: its label, (low, high) limits, log scale, ticks.

    ``ticks``: values, or (label, value) pairs; ``None`` for round values.
    """

    def tick_values(self):
        if self.ticks is not None:
            return self.ticks
        return _log_ticks(*self.lim) if self.log else _linear_ticks(*self.lim)


class _Plot:
    """Axes with tick values on both axes; data coordinates to pixels."""

    def __init__(self, title, xaxis, yaxis, *, width=_W, height=_H, right=_RIGHT):
        self.xaxis, self.yaxis = xaxis, yaxis
        self.x0, self.x1 = _LEFT, width - right
        self.y0, self.y1 = height - _BOTTOM, _TOP
        self.width, self.height = width, height
        self.parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}" {_FONT}>',
            f"<title>{escape(title)}</title>",
            f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" '
            'fill="white" stroke="#ccc"/>',
        ]
        self._draw_ticks()
        self._draw_axes()

    def _ticks(self, axis, place):
        """(label, pixel position) of each tick of an axis."""
        for v in axis.tick_values():
            label, v = v if isinstance(v, tuple) else (_tick_text(v), v)
            yield str(label), place(v)

    def _draw_ticks(self):
        """Horizontal grid lines with the values on the left; x tick marks."""
        x0, x1, y0 = self.x0, self.x1, self.y0
        for label, y in self._ticks(self.yaxis, self.y):
            self.parts.append(_line(x0, f"{y:.1f}", x1, f"{y:.1f}", "#e6e6e6"))
            self.parts.append(_text(x0 - 6, f"{y + 4:.1f}", 11, label, _END))
        for label, x in self._ticks(self.xaxis, self.x):
            self.parts.append(_line(f"{x:.1f}", y0, f"{x:.1f}", y0 + 5, "black"))
            self.parts.append(_text(f"{x:.1f}", y0 + 18, 11, label, _MIDDLE))

    def _draw_axes(self):
        """The two axis lines and their labels (the y label rotated)."""
        x0, x1, y0, y1 = self.x0, self.x1, self.y0, self.y1
        ymid = f"{(y0 + y1) / 2:.0f}"
        rotate = f'{_MIDDLE} transform="rotate(-90 16 {ymid})"'
        self.parts += [
            _line(x0, y0, x1, y0, "black"),
            _line(x0, y0, x0, y1, "black"),
            _text(
                f"{(x0 + x1) / 2:.0f}", self.height - 10, 12, self.xaxis.label, _MIDDLE
            ),
            _text(16, ymid, 12, self.yaxis.label, rotate),
        ]

    @staticmethod
    def _frac(v, lim, log):
        lo, hi = lim
        if log:
            v, lo, hi = np.log10(max(v, 1e-300)), np.log10(lo), np.log10(hi)
        return 0.5 if hi == lo else (v - lo) / (hi - lo)

    def x(self, v):
        frac = self._frac(v, self.xaxis.lim, self.xaxis.log)
        return self.x0 + frac * (self.x1 - self.x0)

    def y(self, v):
        frac = self._frac(v, self.yaxis.lim, self.yaxis.log)
        return self.y0 - frac * (self.y0 - self.y1)

    def legend(self, entries):
        """``entries``: (label, color, dashed) drawn right of the plot area."""
        x = self.x1 + 12
        for i, (label, color, dashed) in enumerate(entries):
            y = self.y1 + 10 + 18 * i
            dash = ' stroke-dasharray="5 3"' if dashed else ""
            self.parts.append(_line(x, y, x + 22, y, color, f' stroke-width="2"{dash}'))
            self.parts.append(_text(x + 28, y + 4, 11, label))

    def svg(self):
        return "\n".join([*self.parts, "</svg>"])


def _per_target_chart(per_target, target_names):
    """Per-target log loss, targets sorted from the worst to the best."""
    order = np.argsort(-per_target)
    values = per_target[order]
    n = len(values)
    top = float(values.max()) if n else 1.0
    # round ranks, the last one replaced by n (no two labels on each other)
    ticks = [int(v) for v in _linear_ticks(1, n) if 1 < v < n - 0.08 * n]
    ticks = sorted({1, *ticks, n})
    plot = _Plot(
        "per-target log loss",
        _Axis(
            f"targets ranked from the worst (1) to the best ({n}); hover a bar "
            "for its name",
            (0.5, n + 0.5),
            ticks=ticks,
        ),
        _Axis("log loss", (0.0, top * 1.05 or 1.0)),
    )
    step = (plot.x1 - plot.x0) / max(n, 1)
    for r, (j, v) in enumerate(zip(order, values)):
        y = plot.y(v)
        plot.parts.append(
            f'<rect x="{plot.x0 + r * step + 0.1 * step:.2f}" y="{y:.2f}" '
            f'width="{max(0.8 * step, 0.5):.2f}" height="{plot.y0 - y:.2f}" '
            f'fill="{_COLORS[0]}"><title>{escape(str(target_names[j]))}: '
            f"{v:.5f}</title></rect>"
        )
    return plot.svg()


def _weights_chart(names, mean_w, fold_w):
    """Mean blend weight of each model (bars) and each fold's (dots)."""
    n = len(names)
    xticks = [
        (f"{name} ({w:.3f})", m + 0.5) for m, (name, w) in enumerate(zip(names, mean_w))
    ]
    plot = _Plot(
        "mean blend weights",
        _Axis(
            "model (bar: mean over the folds; dots: each fold)", (0.0, n), ticks=xticks
        ),
        _Axis("blend weight", (0.0, 1.0), ticks=[0.0, 0.25, 0.5, 0.75, 1.0]),
        width=min(_W, 160 + 120 * n),
    )
    for m, (name, w) in enumerate(zip(names, mean_w)):
        x, y = plot.x(m + 0.2), plot.y(w)
        width = plot.x(m + 0.8) - x
        plot.parts.append(
            f'<rect x="{x:.2f}" y="{y:.2f}" width="{width:.2f}" '
            f'height="{plot.y0 - y:.2f}" fill="{_COLORS[m % len(_COLORS)]}">'
            f"<title>{escape(name)}: {w:.4f}</title></rect>"
        )
        for wf in fold_w[m]:
            plot.parts.append(
                f'<circle cx="{plot.x(m + 0.5):.1f}" cy="{plot.y(wf):.1f}" r="3" '
                'fill="black" fill-opacity="0.6"/>'
            )
    return plot.svg()


def _calibration_plot(bins):
    lo = 1e-4
    plot = _Plot(
        "calibration",
        _Axis("mean predicted probability of the bin (log scale)", (lo, 1.0), log=True),
        _Axis("observed frequency (log scale)", (lo, 1.0), log=True),
    )
    plot.parts.append(
        _line(
            *(f"{v:.1f}" for v in (plot.x(lo), plot.y(lo), plot.x(1), plot.y(1))),
            "#999",
            ' stroke-dasharray="4 3"',
        )
    )
    for b in bins:
        cx = plot.x(min(max(b["mean_predicted"], lo), 1.0))
        cy = plot.y(min(max(b["observed"], lo), 1.0))
        r = 2 + min(6, np.log10(b["n"] + 1))
        fill = _COLORS[1] if b["observed"] >= lo else "white"
        plot.parts.append(
            f'<circle cx="{cx:.2f}" cy="{cy:.2f}" r="{r:.1f}" fill="{fill}" '
            f'stroke="{_COLORS[1]}"><title>predicted {b["mean_predicted"]:.5f}, '
            f"observed {b['observed']:.5f}, n={b['n']}</title></circle>"
        )
    return plot.svg()


def _learning_curves(series, title, boundaries=()):
    """Loss per epoch on a log scale, the legend right of the plot.

    ``series``: (label, [(epoch, loss), ...], color, dashed); ``boundaries``:
    (epoch, label) of vertical lines between training steps.
    """
    series = [s for s in series if s[1]]
    if not series:
        return ""
    losses = [v for _, pts, _, _ in series for _, v in pts if v > 0]
    epochs = [e for _, pts, _, _ in series for e, _ in pts]
    lo, hi = min(losses), max(losses)
    if hi <= lo * 1.0001:
        lo, hi = lo / 1.1, hi * 1.1
    pad = (hi / lo) ** 0.04
    first, last = min(epochs), max(epochs)
    xticks = [int(v) for v in _linear_ticks(first, last, 6) if float(v).is_integer()]
    plot = _Plot(
        title,
        _Axis("epoch", (first - 0.5, last + 0.5), ticks=xticks or [first, last]),
        _Axis("loss (log scale)", (lo / pad, hi * pad), log=True),
        right=190,
    )
    for epoch, label in boundaries:
        x = f"{plot.x(epoch - 0.5):.1f}"
        dotted = ' stroke-dasharray="2 3"'
        plot.parts.append(_line(x, plot.y0, x, plot.y1, "#888", dotted))
        from_here = f"{label} from here"
        x_text = f"{plot.x(epoch - 0.5) + 4:.1f}"
        plot.parts.append(_text(x_text, plot.y0 - 6, 11, from_here, ' fill="#555"'))
    for label, pts, color, dashed in series:
        xy = " ".join(f"{plot.x(e):.2f},{plot.y(v):.2f}" for e, v in pts if v > 0)
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        plot.parts.append(
            f'<polyline points="{xy}" fill="none" stroke="{color}" '
            f'stroke-width="1.5"{dash}><title>{escape(label)}</title></polyline>'
        )
    plot.legend([(lab, color, dashed) for lab, _, color, dashed in series])
    return plot.svg()


def _table(header, rows, table_id):
    out = [f'<table id="{table_id}"><thead><tr>']
    out += [f"<th>{escape(str(h))}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append(
            "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def _json_text(value):
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _provenance(infos, config, cvdir):
    """The rows of the table that says what produced the report."""
    settings = dict((config or {}).get("settings") or {})
    data_files = settings.pop("data_files", None) or {}
    fingerprint = settings.pop("data", None)
    now = datetime.datetime.now(datetime.timezone.utc)
    rows = [["report written", now.isoformat(timespec="seconds")]]
    if cvdir is not None:
        rows.append(["CV folder", str(cvdir)])
    envs = [i.get("environment") for i in infos if i.get("environment")]
    if envs:
        dates = sorted(e.get("date", "") for e in envs)
        rows.append(["folds computed", f"{dates[0]} to {dates[-1]} (UTC)"])
    rows.append(["moa-sklearn (CV run)", (config or {}).get("version", "unknown")])
    if infos:
        rows.append(["models fitted", ", ".join(infos[0]["model_scores"])])
    for key, value in settings.items():
        rows.append([f"setting: {key}", _json_text(value)])
    for name, digest in data_files.items():
        rows.append([f"data: {name} (SHA-256)", digest])
    if fingerprint:
        rows.append(["data: rows and columns (fingerprint)", fingerprint])
    if not envs:
        rows.append(["machine", "not recorded (a run of an older version)"])
        return rows
    return rows + _machine_rows(envs)


def _machine_rows(envs):
    """The machine and library versions of the folds (those of the first)."""
    env = envs[0]
    flags = env.get("cpu_flags")
    cpu = env.get("cpu", "unknown")
    if flags is not None:
        cpu += f" ({', '.join(flags) if flags else 'no AVX2'})"
    cores = env.get("cores_used")
    rows = [
        ["machine: CPU", cpu],
        [
            "machine: cores",
            f"{len(cores) if cores else '?'} used of {env.get('logical_cores')}",
        ],
        ["machine: memory", f"{env.get('memory_gib')} GiB"],
        ["machine: GPU", env.get("gpu") or "none used"],
        ["machine: Python, platform", f"{env.get('python')}, {env.get('platform')}"],
    ]
    for name, version in (env.get("versions") or {}).items():
        rows.append([f"version: {name}", version])
    others = {e.get("cpu") for e in envs} - {env.get("cpu")}
    if others:
        rows.append(["note", f"some folds ran on another CPU: {sorted(others)}"])
    return rows


def write_report(folds, n_folds, summary=None, config=None, cvdir=None):
    """The HTML text of the report of the finished ``folds`` of a CV run.

    Parameters
    ----------
    folds : list of (arrays, info)
        As saved by ``moa-sklearn cv`` (``fold_K.npz`` and ``fold_K.json``,
        whose ``environment`` records the machine and versions).
    n_folds : int
        Number of folds of the run.
    summary : dict or None
        ``cv_summary.json`` when the run is complete.
    config : dict or None
        ``config.json`` of the run: its settings and data fingerprints.
    cvdir : str or None
        The CV folder, named in the report.
    """
    Y = np.concatenate([a["y_true"] for a, _ in folds])
    P = np.concatenate([a["proba"] for a, _ in folds])
    infos = [i for _, i in folds]
    names = list(infos[0]["model_scores"])
    target_names = (summary or {}).get("target_names") or [
        f"target {j}" for j in range(Y.shape[1])
    ]
    return "\n".join(
        [
            *_head(infos, names, Y.shape, n_folds, config),
            *_scores_section(infos, names, Y, P, summary),
            *_per_target_section(Y, P, target_names),
            *_calibration_section(Y, P),
            *_weights_section(infos, names),
            *_learning_curves_section(infos, names),
            *_provenance_section(infos, config, cvdir),
            "</body></html>",
        ]
    )


_STYLE = (
    "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;"
    "padding:0 1em}"
    "table{border-collapse:collapse;margin:0.5em 0}"
    "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
    "#provenance td,#provenance th{text-align:left;font-size:90%;"
    "word-break:break-all}"
    "svg{display:block;margin:0.5em 0}</style>"
)


def _head(infos, names, shape, n_folds, config):
    """The page's head, title and first lines: folds, models, run, protocol."""
    config = config or {}
    settings = config.get("settings") or {}
    line = (
        f"<p>Models: {escape(', '.join(names))}; {settings.get('profile', '?')} "
        f"profile, seed {settings.get('seed', '?')}, {shape[0]} rows, "
        f"{shape[1]} targets"
    )
    env = next((i["environment"] for i in infos if i.get("environment")), None)
    if env:
        line += (
            f"; computed by moa-sklearn {escape(str(config.get('version')))} on "
            f"{escape(str(env.get('cpu')))} ({len(env.get('cores_used') or [])} "
            f"cores) on {escape(str(env.get('date', ''))[:10])}"
        )
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>moa-sklearn CV report</title>",
        _STYLE,
        "</head><body>",
        "<h1>moa-sklearn CV report</h1>",
        f"<p>{len(infos)} of {n_folds} folds finished. Log losses are the "
        "competition metric (mean columnwise binary log loss) over all rows, "
        "control rows included.</p>",
        line + '. <a href="#provenance">What produced this report</a>.</p>',
        _protocol_line(settings.get("protocol")),
    ]


def _protocol_line(protocol):
    if protocol not in _PROTOCOLS:  # a run of a version without protocols
        return (
            '<p id="protocol">Protocol: <b>kaggle</b> (not recorded by this run; '
            "the only one before protocols were named).</p>"
        )
    max_drug_size, what = _PROTOCOLS[protocol]
    return (
        f'<p id="protocol">Protocol: <b>{escape(protocol)}</b> '
        f"({escape(what)}; "
        f"DrugMultilabelStratifiedKFold(max_drug_size={max_drug_size})).</p>"
    )


def _scores_section(infos, names, Y, P, summary):
    """The out-of-fold score and a table of each fold's (and all folds') scores."""
    from .metrics import mean_columnwise_log_loss

    score = mean_columnwise_log_loss(Y, P)
    header = ["fold", "rows", "blend", *names, "logistic", "prior", "Bayes"]
    header.append("fit seconds")
    rows = [
        [
            i["fold"] + 1,
            i["n_test"],
            _fmt(i["score"], 6),
            *[_fmt(i["model_scores"][n], 6) for n in names],
            _fmt(i.get("baseline_score"), 6),
            _fmt(i["prior_score"], 6),
            _fmt(i.get("bayes_score"), 6),
            f"{i['fit_seconds']:.1f}",
        ]
        for i in infos
    ]
    if summary is not None:
        rows.append(
            [
                "all",
                Y.shape[0],
                _fmt(summary["score"], 6),
                *[_fmt(summary["model_scores"].get(n), 6) for n in names],
                _fmt(summary.get("baseline_score"), 6),
                _fmt(summary["prior_score"], 6),
                _fmt(summary.get("bayes_score"), 6),
                f"{sum(i['fit_seconds'] for i in infos):.1f}",
            ]
        )
    return [
        '<section id="scores"><h2>Scores</h2>',
        f'<p>Out-of-fold log loss: <span id="oof-score">{score:.6f}</span></p>',
        _table(header, rows, "fold-scores"),
        "<p>logistic: the plain baseline (<code>make_baseline_pipeline</code>: "
        "logistic regression on RankGauss + PCA features) fitted on the same "
        "training part; prior: the training part's label frequencies; Bayes: "
        "the exact optimum, when the data come from <code>make-data</code>."
        "</p></section>",
    ]


def _per_target_section(Y, P, target_names):
    """Each target's log loss (a chart) and the ten worst targets (a table)."""
    from .metrics import columnwise_log_loss

    per_target = columnwise_log_loss(Y, P)
    worst = np.argsort(-per_target)[:10]
    return [
        '<section id="per-target"><h2>Per-target log loss</h2>',
        _per_target_chart(per_target, target_names),
        "<p>Worst targets:</p>",
        _table(
            ["target", "log loss", "positives"],
            [
                [target_names[j], f"{per_target[j]:.6f}", int(Y[:, j].sum())]
                for j in worst
            ],
            "worst-targets",
        ),
        "</section>",
    ]


def _calibration_section(Y, P):
    """The calibration of the OOF predictions: a plot and its bins."""
    bins = calibration_bins(Y, P)
    return [
        '<section id="calibration"><h2>Calibration of OOF predictions</h2>',
        _calibration_plot(bins),
        "<p>Every out-of-fold prediction (row x target) binned by its "
        "probability; a dot is a bin (area: its count) at its mean prediction "
        "and its observed frequency of positives. On the dashed line the "
        "predictions are calibrated. A hollow dot at the bottom is a bin "
        "without a positive.</p>",
        _table(
            ["bin", "n", "mean predicted", "observed"],
            [
                [
                    f"[{b['lo']:.4g}, {b['hi']:.4g})",
                    b["n"],
                    f"{b['mean_predicted']:.6f}",
                    f"{b['observed']:.6f}",
                ]
                for b in bins
            ],
            "calibration-table",
        ),
        "</section>",
    ]


def _weights_section(infos, names):
    """The blend's weights in each fold (a table) and their mean (a chart)."""
    fold_w = [[i["weights"][n] for i in infos] for n in names]
    mean_w = [float(np.mean(w)) for w in fold_w]
    return [
        '<section id="weights"><h2>Blend weights</h2>',
        _table(
            ["fold", *names],
            [
                [i["fold"] + 1, *[f"{i['weights'][n]:.4f}" for n in names]]
                for i in infos
            ],
            "weights-table",
        ),
        _weights_chart(names, mean_w, fold_w),
        "</section>",
    ]


def _learning_curves_section(infos, names):
    """Each net's learning curves, as refitted in the first finished fold."""
    out = [
        '<section id="learning-curves"><h2>Learning curves of the nets</h2>',
        "<p>Each net as refitted on the training part of the first finished "
        "fold (first seed; solid: training loss, dashed: validation loss; log "
        "scale, so that a high first epoch does not flatten the rest). The "
        "two-step net pretrains on the scored and nonscored targets, then "
        "fine-tunes on the scored ones: its two steps are separated by a "
        "dotted line.</p>",
    ]
    first = infos[0].get("history", {})
    for name in names:
        series, boundaries = _curves_of(first.get(name) or [])
        svg = _learning_curves(series, f"learning curve {name}", boundaries)
        out.append(f"<h3>{escape(name)}</h3>")
        out.append(svg or "<p>No learning curve recorded.</p>")
    out.append("</section>")
    return out


def _curves_of(records):
    """The series and step boundaries of a net's history (its first seed)."""
    seeds = [r.get("seed") for r in records]
    records = [r for r in records if r.get("seed") == (seeds[0] if seeds else None)]
    series, boundaries = [], []
    steps = list(dict.fromkeys(r.get("step") for r in records))
    for s, step in enumerate(steps):  # the two-step net: pretrain, finetune
        idx = [i for i, r in enumerate(records) if r.get("step") == step]
        if s and idx:
            boundaries.append((idx[0] + 1, str(step)))
        for key, dashed in (("train_loss", False), ("valid_loss", True)):
            pts = [
                (i + 1, float(records[i][key]))
                for i in idx
                if records[i].get(key) is not None
            ]
            what = "training" if key == "train_loss" else "validation"
            label = f"{step} {what}" if step is not None else what
            color = _COLORS[(2 * s + dashed) % len(_COLORS)]
            series.append((label, pts, color, dashed))
    return series, boundaries


def _provenance_section(infos, config, cvdir):
    """What produced the report: settings, data digests, machine, versions."""
    return [
        '<section id="provenance"><h2>What produced this report</h2>',
        "<p>The settings of the CV run, the SHA-256 of its data files (compare "
        "with <code>sha256sum</code>), and the machine and library versions "
        "that computed the folds.</p>",
        _table(
            ["what", "value"], _provenance(infos, config, cvdir), "provenance-table"
        ),
        "</section>",
    ]
