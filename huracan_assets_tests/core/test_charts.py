"""The UI's matplotlib charts: small, valid PNGs, with the roles' colours where the data puts them."""

import base64
import io
from datetime import date, timedelta

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from huracan_assets.core.reporting.charts import (
    COLORS,
    NEGATIVE,
    POSITIVE,
    REFERENCE,
    bar_chart,
    equity_chart,
    markdown_image,
)

DAYS = [date(2024, 8, 1) + timedelta(days=i) for i in range(10)]


def _image(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(io.BytesIO(data))[:, :, :3]


def _has(img: np.ndarray, color: str, tol: float = 0.02) -> int:
    return int((np.abs(img - np.asarray(to_rgb(color))) < tol).all(axis=2).sum())


def test_equity_chart_draws_each_role_in_its_colour_with_the_start_line():
    rising, falling = np.linspace(1000, 1100, 10), np.linspace(1000, 950, 10)
    data = equity_chart({"challenger": (DAYS, rising), "champion": (DAYS, falling)}, reference=1000.0)
    img = _image(data)
    assert img.shape[:2] == (184, 448) and len(data) < 40_000  # small metadata
    assert _has(img, COLORS["challenger"]) > 50 and _has(img, COLORS["champion"]) > 50 and _has(img, REFERENCE) > 20
    # the rising curve ends higher on the canvas than the falling one (rows count from the top)
    blue = np.argwhere((np.abs(img - np.asarray(to_rgb(COLORS["challenger"]))) < 0.02).all(axis=2))
    orange = np.argwhere((np.abs(img - np.asarray(to_rgb(COLORS["champion"]))) < 0.02).all(axis=2))
    right = min(blue[:, 1].max(), orange[:, 1].max()) - 5
    assert blue[blue[:, 1] >= right, 0].mean() < orange[orange[:, 1] >= right, 0].mean()
    assert equity_chart({"challenger": (DAYS, rising)}) == equity_chart({"challenger": (DAYS, rising)})  # stable


def test_bar_chart_colours_by_sign_and_skips_nan():
    img = _image(bar_chart(["f1", "f2", "f3"], [12.0, None, -7.5], "folds", "net bps", ["AUC 0.55", "", "AUC 0.48"]))
    assert _has(img, POSITIVE) > 100 and _has(img, NEGATIVE) > 100
    only_positive = _image(bar_chart(["a", "b"], [3.0, float("nan")], "folds", "net bps"))
    assert _has(only_positive, POSITIVE) > 100 and _has(only_positive, NEGATIVE) == 0


def test_markdown_image_embeds_the_png():
    data = bar_chart(["a"], [1.0], "t", "y")
    md = markdown_image(data, "folds")
    assert md.startswith("![folds](data:image/png;base64,") and base64.b64decode(md.split(",", 1)[1][:-1]) == data
