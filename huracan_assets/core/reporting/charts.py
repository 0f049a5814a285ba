"""Small PNG charts drawn with numpy alone, for the Dagster UI (markdown metadata with a ``data:`` URI).

No plotting library is a dependency of the Engine, and the UI only needs a glance: equity curves of the shadow
window and the walk-forward folds. So this module rasterizes lines and bars into an RGB array and encodes it as
a PNG (8-bit RGB, no interlace, filter 0, zlib). Text stays in the markdown around the image (legend, values).

- :func:`line_chart`: series on one shared y scale, each column of pixels drawing the min-max envelope of the
  points that fall in it (so a 4,000-bar curve in 480 pixels keeps its spikes), joined to the previous column;
  an optional dashed reference level (the initial equity).
- :func:`bar_chart`: one bar per value from a zero line, one colour for >= 0 and one for < 0; NaN: no bar.
- :func:`png` encodes an image; :func:`markdown_image` wraps PNG bytes for ``MetadataValue.md``.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Sequence

import numpy as np

WHITE = (255, 255, 255)
FRAME = (200, 200, 200)
REFERENCE = (150, 150, 150)
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40))  # blue, orange, green, red
POSITIVE, NEGATIVE = (44, 160, 44), (214, 39, 40)
MARGIN = 6


def png(image: np.ndarray) -> bytes:
    """The PNG bytes of an ``(height, width, 3)`` uint8 image."""
    img = np.ascontiguousarray(image, dtype=np.uint8)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"image must be (height, width, 3) uint8, got shape {img.shape}")
    h, w, _ = img.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def markdown_image(data: bytes, alt: str) -> str:
    """Markdown showing PNG ``data`` inline (the Dagster UI renders it in the metadata panel)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})"


def _canvas(width: int, height: int) -> np.ndarray:
    if width < 4 * MARGIN or height < 4 * MARGIN:
        raise ValueError(f"a chart needs at least {4 * MARGIN} x {4 * MARGIN} pixels, got {width} x {height}")
    img = np.empty((height, width, 3), np.uint8)
    img[:] = WHITE
    img[MARGIN - 1, MARGIN - 1 : width - MARGIN + 1] = FRAME
    img[height - MARGIN, MARGIN - 1 : width - MARGIN + 1] = FRAME
    img[MARGIN - 1 : height - MARGIN + 1, MARGIN - 1] = FRAME
    img[MARGIN - 1 : height - MARGIN + 1, width - MARGIN] = FRAME
    return img


def _scale(lo: float, hi: float, height: int):
    """Value -> pixel row (top = high), with 5 % head room; a flat range is centred."""
    pad = (hi - lo) * 0.05 or max(abs(hi), 1.0) * 0.01
    lo, hi = lo - pad, hi + pad
    top, bottom = MARGIN, height - MARGIN - 1

    def row(v):
        return np.clip(np.rint(bottom - (np.asarray(v, np.float64) - lo) / (hi - lo) * (bottom - top)), top, bottom)

    return row


def line_chart(
    series: Sequence[np.ndarray],
    width: int = 480,
    height: int = 160,
    reference: float | None = None,
    colors: Sequence[tuple[int, int, int]] = PALETTE,
) -> np.ndarray:
    """An image of ``series`` (each 1-D, NaN ignored) on a shared y scale, x spread over the plot width."""
    img = _canvas(width, height)
    values = [np.asarray(s, np.float64) for s in series]
    finite = [v[np.isfinite(v)] for v in values]
    pool = [x for x in finite if x.size] + ([np.array([reference])] if reference is not None else [])
    if not pool:
        return img
    row = _scale(min(float(x.min()) for x in pool), max(float(x.max()) for x in pool), height)
    left, right = MARGIN, width - MARGIN - 1
    if reference is not None:
        r = int(row(reference))
        dashed = np.arange(left, right + 1)
        img[r, dashed[(dashed // 4) % 2 == 0]] = REFERENCE
    for k, v in enumerate(values):
        color = colors[k % len(colors)]
        ok = np.flatnonzero(np.isfinite(v))
        if ok.size == 0:
            continue
        cols = left + (ok * (right - left) // max(v.size - 1, 1))
        starts = np.flatnonzero(np.r_[True, np.diff(cols) > 0])
        lo = np.minimum.reduceat(v[ok], starts)
        hi = np.maximum.reduceat(v[ok], starts)
        first = v[ok][starts]
        previous = np.r_[first[0], v[ok][np.r_[starts[1:], ok.size] - 1][:-1]]  # the last point of the column before
        top = row(np.maximum(hi, previous)).astype(int)
        bottom = row(np.minimum(lo, previous)).astype(int)
        for c, t, b in zip(cols[starts], top, bottom, strict=True):
            img[t : b + 1, c] = color
            img[t : b + 1, min(c + 1, right)] = color  # two pixels wide
    return img


def bar_chart(
    values: Sequence[float], width: int = 480, height: int = 120, positive=POSITIVE, negative=NEGATIVE
) -> np.ndarray:
    """An image of one bar per value, from a zero line (drawn in grey) to the value."""
    img = _canvas(width, height)
    v = np.asarray(values, np.float64)
    ok = np.isfinite(v)
    if not ok.any():
        return img
    row = _scale(min(0.0, float(v[ok].min())), max(0.0, float(v[ok].max())), height)
    zero = int(row(0.0))
    left, right = MARGIN, width - MARGIN - 1
    slot = (right - left + 1) / v.size
    for i, x in enumerate(v):
        a = int(left + i * slot + slot * 0.15)
        b = max(a, int(left + (i + 1) * slot - slot * 0.15) - 1)
        if np.isfinite(x):
            r = int(row(x))
            img[min(r, zero) : max(r, zero) + 1, a : b + 1] = positive if x >= 0 else negative
    img[zero, left : right + 1] = REFERENCE
    return img
