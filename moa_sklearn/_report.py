"""HTML report of a ``moa-sklearn cv`` run, with hand-drawn inline SVG plots.

Private helper of :mod:`moa_sklearn.cli` (no plotting library needed).
"""

from html import escape

import numpy as np

__all__ = ["write_report", "calibration_bins"]

_W, _H, _PAD = 560, 260, 44
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


def _svg_open(title, width=_W, height=_H):
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white" '
        'stroke="#ccc"/>',
    ]


def _axes(parts, xlabel, ylabel, ymin, ymax, width=_W, height=_H):
    x0, y0, x1, y1 = _PAD, height - _PAD, width - 10, 10
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/>')
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>')
    for frac in (0.0, 0.5, 1.0):
        v = ymin + frac * (ymax - ymin)
        y = y0 - frac * (y0 - y1)
        parts.append(
            f'<text x="{x0 - 4}" y="{y + 4:.1f}" font-size="10" '
            f'text-anchor="end">{v:.3g}</text>'
        )
    parts.append(
        f'<text x="{(x0 + x1) / 2:.0f}" y="{height - 8}" font-size="11" '
        f'text-anchor="middle">{escape(xlabel)}</text>'
    )
    parts.append(
        f'<text x="12" y="{(y0 + y1) / 2:.0f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {(y0 + y1) / 2:.0f})">{escape(ylabel)}</text>'
    )
    return x0, y0, x1, y1


def _bar_chart(values, labels, title, ylabel):
    values = [float(v) for v in values]
    top = max(values + [1e-12]) * 1.05
    parts = _svg_open(title)
    x0, y0, x1, y1 = _axes(parts, "target", ylabel, 0.0, top)
    n = max(len(values), 1)
    step = (x1 - x0) / n
    for i, (v, lab) in enumerate(zip(values, labels)):
        h = (y0 - y1) * v / top
        parts.append(
            f'<rect x="{x0 + i * step + 0.1 * step:.2f}" y="{y0 - h:.2f}" '
            f'width="{0.8 * step:.2f}" height="{h:.2f}" fill="{_COLORS[0]}">'
            f"<title>{escape(str(lab))}: {v:.5f}</title></rect>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _calibration_plot(bins):
    parts = _svg_open("calibration")
    x0, y0, x1, y1 = _axes(
        parts, "mean predicted probability (log10)", "observed (log10)", -4, 0
    )

    def pos(v):
        lv = np.clip(np.log10(max(v, 1e-4)), -4, 0)
        return (lv + 4) / 4

    parts.append(
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#999" '
        'stroke-dasharray="4 3"/>'
    )
    for b in bins:
        cx = x0 + pos(b["mean_predicted"]) * (x1 - x0)
        cy = y0 - pos(b["observed"]) * (y0 - y1)
        r = 2 + min(6, np.log10(b["n"] + 1))
        parts.append(
            f'<circle cx="{cx:.2f}" cy="{cy:.2f}" r="{r:.1f}" fill="{_COLORS[1]}">'
            f"<title>predicted {b['mean_predicted']:.5f}, observed "
            f"{b['observed']:.5f}, n={b['n']}</title></circle>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _learning_curves(histories, title):
    """histories: list of (label, [(x index, loss), ...])."""
    series = [(lab, pts) for lab, pts in histories if pts]
    if not series:
        return ""
    losses = [v for _, pts in series for _, v in pts]
    lo, hi = min(losses), max(losses)
    if hi <= lo:
        hi = lo + 1e-9
    n_max = max(i for _, pts in series for i, _ in pts) + 1
    parts = _svg_open(title)
    x0, y0, x1, y1 = _axes(parts, "epoch", "loss", lo, hi)
    for s, (lab, pts) in enumerate(series):
        xy = " ".join(
            f"{x0 + (i / max(n_max - 1, 1)) * (x1 - x0):.2f},"
            f"{y0 - (v - lo) / (hi - lo) * (y0 - y1):.2f}"
            for i, v in pts
        )
        color = _COLORS[s % len(_COLORS)]
        dash = ' stroke-dasharray="5 3"' if "valid" in lab else ""
        parts.append(
            f'<polyline points="{xy}" fill="none" stroke="{color}"{dash}>'
            f"<title>{escape(lab)}</title></polyline>"
        )
        parts.append(
            f'<text x="{x1 - 150}" y="{y1 + 12 + 12 * s}" font-size="10" '
            f'fill="{color}">{escape(lab)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


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


def write_report(folds, n_folds, summary=None):
    """The HTML text of the report of the finished ``folds`` of a CV run.

    Parameters
    ----------
    folds : list of (arrays, info)
        As saved by ``moa-sklearn cv`` (``fold_K.npz`` and ``fold_K.json``).
    n_folds : int
        Number of folds of the run.
    summary : dict or None
        ``cv_summary.json`` when the run is complete.
    """
    from .metrics import columnwise_log_loss, mean_columnwise_log_loss

    Y = np.concatenate([a["y_true"] for a, _ in folds])
    P = np.concatenate([a["proba"] for a, _ in folds])
    infos = [i for _, i in folds]
    names = list(infos[0]["model_scores"])
    target_names = (summary or {}).get("target_names") or [
        f"target {j}" for j in range(Y.shape[1])
    ]
    score = mean_columnwise_log_loss(Y, P)
    per_target = columnwise_log_loss(Y, P)
    bins = calibration_bins(Y, P)

    h = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>moa-sklearn CV report</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse;margin:0.5em 0}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style>",
        "</head><body>",
        "<h1>moa-sklearn CV report</h1>",
        f"<p>{len(folds)} of {n_folds} folds finished. Log losses are the "
        "competition metric (mean columnwise binary log loss) over all rows, "
        "control rows included.</p>",
    ]

    # --- scores
    h.append('<section id="scores"><h2>Scores</h2>')
    h.append(f'<p>Out-of-fold log loss: <span id="oof-score">{score:.6f}</span></p>')
    header = ["fold", "rows", "blend", *names, "prior", "Bayes", "fit seconds"]
    rows = [
        [
            i["fold"] + 1,
            i["n_test"],
            _fmt(i["score"], 6),
            *[_fmt(i["model_scores"][n], 6) for n in names],
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
                _fmt(summary["prior_score"], 6),
                _fmt(summary.get("bayes_score"), 6),
                f"{sum(i['fit_seconds'] for i in infos):.1f}",
            ]
        )
    h.append(_table(header, rows, "fold-scores"))
    h.append(
        "<p>prior: the training part's label frequencies; Bayes: the exact "
        "optimum, when the data come from <code>make-data</code>.</p></section>"
    )

    # --- per-target log loss
    h.append('<section id="per-target"><h2>Per-target log loss</h2>')
    h.append(_bar_chart(per_target, target_names, "per-target log loss", "log loss"))
    order = np.argsort(-per_target)
    h.append("<p>Worst targets:</p>")
    h.append(
        _table(
            ["target", "log loss", "positives"],
            [
                [target_names[j], f"{per_target[j]:.6f}", int(Y[:, j].sum())]
                for j in order[:10]
            ],
            "worst-targets",
        )
    )
    h.append("</section>")

    # --- calibration
    h.append('<section id="calibration"><h2>Calibration of OOF predictions</h2>')
    h.append(_calibration_plot(bins))
    h.append(
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
        )
    )
    h.append("</section>")

    # --- blend weights
    h.append('<section id="weights"><h2>Blend weights</h2>')
    h.append(
        _table(
            ["fold", *names],
            [
                [i["fold"] + 1, *[f"{i['weights'][n]:.4f}" for n in names]]
                for i in infos
            ],
            "weights-table",
        )
    )
    mean_w = [float(np.mean([i["weights"][n] for i in infos])) for n in names]
    h.append(_bar_chart(mean_w, names, "mean blend weights", "weight"))
    h.append("</section>")

    # --- learning curves
    h.append('<section id="learning-curves"><h2>Learning curves of the nets</h2>')
    h.append(
        "<p>Each net as refitted on the training part of the first finished "
        "fold (first seed; solid: training loss, dashed: validation loss).</p>"
    )
    first = infos[0].get("history", {})
    for name in names:
        records = first.get(name) or []
        seeds = [r.get("seed") for r in records]
        records = [r for r in records if r.get("seed") == (seeds[0] if seeds else None)]
        series = []
        steps = list(dict.fromkeys(r.get("step") for r in records))
        for step in steps:  # the two-step net: pretrain, then finetune
            for key in ("train_loss", "valid_loss"):
                pts = [
                    (i, float(r[key]))
                    for i, r in enumerate(records)
                    if r.get("step") == step and r.get(key) is not None
                ]
                label = " ".join(str(x) for x in (name, step, key) if x is not None)
                series.append((label, pts))
        svg = _learning_curves(series, f"learning curve {name}")
        h.append(f"<h3>{escape(name)}</h3>")
        h.append(svg or "<p>No learning curve recorded.</p>")
    h.append("</section>")
    h.append("</body></html>")
    return "\n".join(h)
