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
from PIL import Image

SIZE = (5.6, 2.3)  # inches
DPI = 80  # 448 x 184 pixels
COLOURS = 64  # of the palette PNG
COLORS = {"challenger": "#1f77b4", "champion": "#ff7f0e"}
POSITIVE, NEGATIVE, REFERENCE = "#2ca02c", "#d62728", "#969696"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _figure(title: str, right: float = 0.97) -> tuple[Figure, object]:
    fig = Figure(figsize=SIZE, dpi=DPI)  # fixed margins: a constrained layout costs more than the drawing
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.12, right=right, bottom=0.16, top=0.88)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.25, linewidth=0.5)
    return fig, ax


def _png(fig: Figure) -> bytes:
    """The figure as a palette PNG (64 colours): a quarter of the bytes of full colour, the same picture."""
    canvas = fig.canvas
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buf = io.BytesIO()
    image.convert("RGB").quantize(colors=COLOURS).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _daily_axis(ax, days: Sequence[date]) -> None:
    """Ticks on whole days (never hours: the points are daily closes), at most about six, labelled "Aug 07"."""
    span = (max(days) - min(days)).days if len(days) else 0
    ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, -(-span // 6))))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))


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
    _daily_axis(ax, [d for days, _ in curves.values() for d in days])
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
    ax.margins(y=0.18)  # room for the annotations above and below the bars, clear of the tick labels
    ax.set_xticks(x, list(labels), fontsize=7)
    ax.set_ylabel(ylabel, fontsize=7)
    for i, text in enumerate(annotate):
        if text and ok[i]:
            ax.annotate(text, (x[i], v[i]), textcoords="offset points", xytext=(0, 3 if v[i] >= 0 else -9),
                        ha="center", fontsize=6)  # fmt: skip
    return _png(fig)


def markdown_image(data: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(data).decode()})"


REGIME_COLORS = {"TREND": "#2ca02c", "RANGE": "#1f77b4", "PANIC": "#d62728", "ILLIQUID": "#7f7f7f"}


def regime_chart(ts_ms: Sequence[int], close: Sequence[float], regimes: Sequence[str], title: str) -> bytes:
    """PNG of the closes of a day's bars over time (UTC), each bar's span shaded by its regime, with a legend of
    the regimes that occur (above the axes, the title in the figure's top line)."""
    fig, ax = _figure("", right=0.97)
    fig.subplots_adjust(top=0.80)
    fig.suptitle(title, fontsize=9, y=0.99)
    t = np.asarray(ts_ms, np.int64).astype("datetime64[ms]")
    ax.plot(t, np.asarray(close, np.float64), color="black", linewidth=1.1, label="close")
    labels = np.asarray(regimes, dtype=object)
    if t.size:
        step = np.median(np.diff(t)) if t.size > 1 else np.timedelta64(1, "h")
        starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
        ends = np.r_[starts[1:], t.size]
        seen = set()
        for s, e in zip(starts, ends, strict=True):
            name = str(labels[s])
            ax.axvspan(t[s], t[e - 1] + step, color=REGIME_COLORS.get(name, "#bcbd22"), alpha=0.18, linewidth=0,
                       label=None if name in seen else name)  # fmt: skip
            seen.add(name)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_xlabel("UTC", fontsize=7)
    ax.set_ylabel("close", fontsize=7)
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.06), frameon=False, ncol=5)
    return _png(fig)


def weights_chart(days: Sequence[date], weights: Mapping[str, Sequence[float]], title: str, top: int = 6) -> bytes:
    """PNG of engine weights over days as stacked areas (they sum to one): the ``top`` engines by their last
    weight, the rest as one grey "others" band, with the legend beside the axes."""
    fig, ax = _figure(title, right=0.72)
    series = {k: np.nan_to_num(np.asarray(v, np.float64)) for k, v in weights.items()}
    ranked = sorted(series, key=lambda k: (-series[k][-1], k)) if series else []
    x = mdates.date2num(list(days))
    bands = [series[k] for k in ranked[:top]]
    labels = list(ranked[:top])
    if len(ranked) > top:
        bands.append(np.sum([series[k] for k in ranked[top:]], axis=0))
        labels.append(f"{len(ranked) - top} others")
    if bands:
        colors = [*(PALETTE[i % len(PALETTE)] for i in range(min(top, len(ranked)))), REFERENCE][: len(bands)]
        ax.stackplot(x, *bands, labels=labels, colors=colors, alpha=0.85, linewidth=0)
    ax.xaxis_date()
    _daily_axis(ax, days)
    ax.set_ylabel("weight", fontsize=7)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(fig)
