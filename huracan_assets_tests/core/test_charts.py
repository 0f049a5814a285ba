"""The numpy-only PNG charts: a valid PNG that decodes to the image, and lines and bars where the values put them."""

import base64
import struct
import zlib

import numpy as np
import pytest

from huracan_assets.core.reporting.charts import (
    MARGIN,
    NEGATIVE,
    PALETTE,
    POSITIVE,
    REFERENCE,
    WHITE,
    bar_chart,
    line_chart,
    markdown_image,
    png,
)


def _decode(data: bytes) -> np.ndarray:
    """An independent PNG reader for what ``png`` writes (8-bit RGB, filter 0): checks every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.setdefault(kind, b"")
        chunks[kind] += body
        pos += 12 + length
    w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, color, interlace) == (8, 2, 0) and b"IEND" in chunks
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(h, 1 + 3 * w)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(h, w, 3)


def _rows_of(img: np.ndarray, color, column: int) -> np.ndarray:
    return np.flatnonzero((img[:, column] == color).all(axis=1))


def test_png_round_trips_and_markdown_embeds_it():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, size=(17, 23, 3), dtype=np.uint8)
    data = png(img)
    assert np.array_equal(_decode(data), img)
    md = markdown_image(data, "equity")
    assert md.startswith("![equity](data:image/png;base64,") and base64.b64decode(md.split(",", 1)[1][:-1]) == data
    with pytest.raises(ValueError):
        png(np.zeros((4, 4), np.uint8))


def test_a_rising_line_goes_up_and_keeps_its_spike():
    v = np.linspace(1.0, 2.0, 4000)
    v[2000] = 3.0  # one bar's spike in a column holding ~8 points
    img = _decode(png(line_chart([v], width=480, height=160)))
    blue = PALETTE[0]
    left, right = MARGIN, 480 - MARGIN - 1
    assert _rows_of(img, blue, left).mean() > _rows_of(img, blue, right - 1).mean() + 50  # higher value: upper row
    spike_col = left + 2000 * (right - left) // 3999
    assert _rows_of(img, blue, spike_col).min() <= MARGIN + 8  # the spike reaches the top of the plot
    assert (img[: MARGIN - 1] == WHITE).all()  # nothing drawn outside the frame


def test_series_share_a_scale_and_the_reference_is_dashed():
    a, b = np.full(100, 1.0), np.full(100, 1.2)
    img = line_chart([a, b], width=200, height=100, reference=1.1)
    col = 100
    row_a, row_b = _rows_of(img, PALETTE[0], col), _rows_of(img, PALETTE[1], col)
    assert row_a.size and row_b.size and row_b.max() < row_a.min()  # 1.2 above 1.0
    ref_rows = np.flatnonzero((img == REFERENCE).all(axis=2).sum(axis=1) > 20)
    assert ref_rows.size == 1 and row_b.max() < ref_rows[0] < row_a.min()  # between, and dashed (one row only)
    blank = line_chart([np.full(10, np.nan)], width=200, height=100)
    assert not (blank == PALETTE[0]).all(axis=2).any()


def test_bars_rise_or_fall_from_zero_and_nan_has_none():
    img = bar_chart([10.0, -5.0, np.nan, 2.0], width=200, height=100)
    zero = np.flatnonzero((img[:, :, :] == REFERENCE).all(axis=2).sum(axis=1) > 100)
    assert zero.size == 1
    slot = (200 - 2 * MARGIN) / 4
    centres = [int(MARGIN + (i + 0.5) * slot) for i in range(4)]
    up, down = _rows_of(img, POSITIVE, centres[0]), _rows_of(img, NEGATIVE, centres[1])
    assert up.max() <= zero[0] and down.min() >= zero[0] and up.size > 2 * down.size - 4
    assert not _rows_of(img, POSITIVE, centres[2]).size and not _rows_of(img, NEGATIVE, centres[2]).size
    assert 0 < _rows_of(img, POSITIVE, centres[3]).size < up.size
    with pytest.raises(ValueError):
        bar_chart([1.0], width=10, height=10)
