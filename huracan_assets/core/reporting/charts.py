"""Small PNG charts for the Dagster UI (markdown metadata with a ``data:`` URI), drawn with matplotlib's Agg
canvas: axes, dates, labels and legends, at a size that keeps the metadata light (a few tens of kilobytes).

- :func:`equity_chart`: dated NAV curves (the champion's and the challengers' forward ledgers), with the starting
  equity as a dashed line;
- :func:`bar_chart`: one labelled bar per value from zero, green for >= 0 and red for < 0 (the walk-forward folds'
  net bps per trade), NaN without a bar;
- :func:`markdown_image` wraps PNG bytes for ``MetadataValue.md``.

No pyplot: each chart has its own ``Figure`` on an Agg canvas, so nothing global is touched and any thread may
draw.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from datetime import date

import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SIZE = (5.6, 2.3)  # inches
DPI = 80  # 448 x 184 pixels
COLORS = {"challenger": "#1f77b4", "champion": "#ff7f0e"}
POSITIVE, NEGATIVE, REFERENCE = "#2ca02c", "#d62728", "#969696"


def _figure(title: str) -> tuple[Figure, object]:
    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.25, linewidth=0.5)
    return fig, ax


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def equity_chart(
    curves: Mapping[str, tuple[Sequence[date], Sequence[float]]],
    reference: float | None = None,
    title: str = "forward NAV",
    ylabel: str = "NAV",
) -> bytes:
    """PNG of dated curves (label -> (dates, values)), each in its role's colour, with a legend."""
    fig, ax = _figure(title)
    for label, (days, values) in curves.items():
        ax.plot(list(days), np.asarray(values, np.float64), label=label, color=COLORS.get(label), linewidth=1.4,
                marker="o" if len(days) < 15 else None, markersize=2.5)  # fmt: skip
    if reference is not None:
        ax.axhline(reference, color=REFERENCE, linestyle="--", linewidth=0.8, label="start")
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.set_ylabel(ylabel, fontsize=7)
    ax.legend(fontsize=7, loc="best", frameon=False)
    return _png(fig)


def bar_chart(
    labels: Sequence[str], values: Sequence[float | None], title: str, ylabel: str, annotate: Sequence[str] = ()
) -> bytes:
    """PNG of one bar per value from a zero line (green >= 0, red < 0, none for NaN), x labels under the bars and
    an optional text above each (``annotate``)."""
    fig, ax = _figure(title)
    v = np.array([np.nan if x is None else float(x) for x in values], np.float64)
    x = np.arange(v.size)
    ok = np.isfinite(v)
    ax.bar(x[ok], v[ok], color=[POSITIVE if y >= 0 else NEGATIVE for y in v[ok]], width=0.6)
    ax.axhline(0.0, color=REFERENCE, linewidth=0.8)
    ax.set_xticks(x, list(labels), fontsize=7)
    ax.set_ylabel(ylabel, fontsize=7)
    for i, text in enumerate(annotate):
        if text and ok[i]:
            ax.annotate(text, (x[i], v[i]), textcoords="offset points", xytext=(0, 3 if v[i] >= 0 else -9),
                        ha="center", fontsize=6)  # fmt: skip
    return _png(fig)


def markdown_image(data: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(data).decode()})"
