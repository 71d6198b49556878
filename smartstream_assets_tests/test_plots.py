"""Chart helpers: real, modest PNGs that embed in Dagster markdown."""

import base64
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from smartstream_assets.domains.employees import ATTRITION
from smartstream_assets.ml import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HISTORY = pd.DataFrame({"month": pd.date_range("2024-01-01", periods=30, freq="MS"), "headcount": 1000 + 7.0 * np.arange(30)})
FORECAST = pd.DataFrame(
    {
        "month": pd.date_range("2026-07-01", periods=6, freq="MS"),
        "yhat": 1210 + 7.0 * np.arange(6),
        "yhat_lower": 1190 + 6.0 * np.arange(6),
        "yhat_upper": 1230 + 8.0 * np.arange(6),
    }
)


def drawn(helper, *args, **kwargs):
    """The axes a helper drew on (png_bytes would clear them)."""
    fig, ax = plots.new_figure()
    helper(ax, *args, **kwargs)
    fig.canvas.draw()  # lays out tick labels as the PNG would
    return ax


def png_of(helper, *args, **kwargs) -> bytes:
    fig, ax = plots.new_figure()
    helper(ax, *args, **kwargs)
    return plots.png_bytes(fig)


def png_size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # IHDR width, height


@pytest.mark.parametrize(
    "helper, args",
    [
        (plots.bar_chart, (["Bangalore", "Pune", "New Delhi"], [812, 433, 255], "Employees per city")),
        (plots.feature_importance, ({f"feature_{i}": 1 / (i + 1) for i in range(40)},)),
        (plots.forecast_chart, (HISTORY, FORECAST, "Headcount")),
        (plots.class_counts, ({0: 1180, 1: 320},)),
    ],
)
def test_every_chart_is_a_modest_png(helper, args):
    png = png_of(helper, *args)
    assert png.startswith(PNG_MAGIC)
    assert 2_000 < len(png) < 150_000
    width, height = png_size(png)
    assert (width, height) == (6 * plots.DPI, round(3.5 * plots.DPI))


def test_markdown_embeds_the_png_as_base64():
    png = png_of(plots.class_counts, {0: 10, 1: 3})
    text = plots.markdown_image(png, "Predicted [stay] / leave\nMarch")
    match = re.fullmatch(r"!\[([^\[\]\n]*)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
    assert match is not None
    assert match.group(1) == "Predicted (stay) / leave March"
    assert base64.b64decode(match.group(2), validate=True) == png
    assert len(text) < plots.MAX_MARKDOWN_BYTES < 1_000_000


def test_markdown_refuses_an_image_over_the_limit():
    with pytest.raises(ValueError, match="over"):
        plots.markdown_image(PNG_MAGIC + bytes(plots.MAX_MARKDOWN_BYTES), "too big")


def test_feature_importance_shows_the_top_features_largest_on_top():
    importances = {"Age": 0.05, "City": -0.4, "PaymentTier": 0.3, "Gender": 0.01, "JoiningYear": 0.2}
    ax = drawn(plots.feature_importance, importances, top=3)
    names = [tick.get_text() for tick in ax.get_yticklabels()]
    assert names == ["JoiningYear", "PaymentTier", "City"]  # bottom to top: by |importance|
    assert [round(p.get_width(), 2) for p in ax.patches] == [0.2, 0.3, -0.4]


def test_bar_chart_writes_values_on_the_bars():
    ax = drawn(plots.bar_chart, ["a", "b"], [3, 12], "Counts")
    assert ax.get_title() == "Counts"
    assert [p.get_height() for p in ax.patches] == [3, 12]
    assert [t.get_text() for t in ax.texts] == ["3", "12"]


def test_class_counts_names_the_classes_by_the_domains_labels_and_their_shares():
    ax = drawn(plots.class_counts, {0: 750, 1: 250}, labels=ATTRITION.class_label_map, colours=ATTRITION.class_colour_map, title="Stay / leave")
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["Stay", "Leave"]
    assert [t.get_text() for t in ax.texts] == ["750 (75%)", "250 (25%)"]
    assert ax.get_title() == "Stay / leave"
    from matplotlib.colors import to_hex

    assert [to_hex(p.get_facecolor()) for p in ax.patches] == list(ATTRITION.class_colours)


def test_class_counts_without_labels_shows_the_keys_in_the_default_colour():
    ax = drawn(plots.class_counts, {"low": 5, 1: 3})
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["low", "1"]
    from matplotlib.colors import to_hex

    assert {to_hex(p.get_facecolor()) for p in ax.patches} == {plots.DEFAULT_COLOUR}


def test_forecast_chart_shades_the_interval_between_history_and_forecast_lines():
    ax = drawn(plots.forecast_chart, HISTORY, FORECAST, "Headcount")
    assert [line.get_label() for line in ax.get_lines()] == ["actual", "forecast"]
    assert len(ax.get_lines()[0].get_xdata()) == 30 and len(ax.get_lines()[1].get_xdata()) == 6
    [band] = ax.collections
    low, high = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    assert (low, high) == (FORECAST["yhat_lower"].min(), FORECAST["yhat_upper"].max())


def test_dashboard_puts_the_three_panels_side_by_side_in_one_modest_png():
    importances = {"JoiningYear": 0.4, "Age": 0.3, "City": 0.2}
    fig = plots.dashboard(
        {"stay": 1100, "leave": 400},
        importances,
        HISTORY,
        FORECAST,
        "employees — champion v3",
        labels=ATTRITION.class_label_map,
        colours=ATTRITION.class_colour_map,
        counts_title="Stay / leave",
        forecast_title="Headcount and forecast",
    )
    assert [ax.get_title() for ax in fig.axes] == ["Stay / leave", "Feature importance (top 3)", "Headcount and forecast"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["Stay", "Leave"]
    assert fig.get_suptitle() == "employees — champion v3"
    png = plots.png_bytes(fig)
    assert png.startswith(PNG_MAGIC) and len(png) < 200_000
    assert len(plots.markdown_image(png, "dashboard")) < plots.MAX_MARKDOWN_BYTES


def test_dashboard_without_a_model_says_so_instead_of_failing():
    fig = plots.dashboard({"stay": 10, "leave": 3}, {}, HISTORY, FORECAST, "employees — champion none")
    assert "no feature importance" in [t.get_text() for t in fig.axes[1].texts]
    assert plots.png_bytes(fig).startswith(PNG_MAGIC)


def test_png_bytes_releases_the_figure():
    fig, ax = plots.new_figure()
    plots.bar_chart(ax, ["x"], [1], "one")
    plots.png_bytes(fig)
    assert fig.axes == []


def test_charts_render_off_screen_without_pyplot():
    code = (
        "import sys\n"
        "from smartstream_assets.ml import plots\n"
        "fig, ax = plots.new_figure()\n"
        "plots.class_counts(ax, {0: 3, 1: 1})\n"
        "png = plots.png_bytes(fig)\n"
        "import matplotlib\n"
        "print(matplotlib.get_backend().lower(), 'matplotlib.pyplot' in sys.modules, png[:4] == b'\\x89PNG')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["agg", "False", "True"]
