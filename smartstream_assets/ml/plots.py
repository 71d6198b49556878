"""Small matplotlib charts for Dagster metadata: draw on an Axes, turn the figure
into PNG bytes, embed those in markdown (``MetadataValue.md``) as a data URI.

Figures are made with ``matplotlib.figure.Figure`` (``new_figure``), not pyplot: no
global figure registry to leak from a long-running code server, no screen needed.
matplotlib is imported inside the functions.
"""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Mapping, Sequence

import pandas as pd

DPI = 90
# Dagster keeps metadata in its event log; a chart must not bloat it.
MAX_MARKDOWN_BYTES = 500_000
DEFAULT_COLOUR = "#4c72b0"


def new_figure(width: float = 6.0, height: float = 3.5):
    """A (Figure, Axes) pair at a size that stays a few tens of KB as PNG."""
    fig = _figure(width, height)
    return fig, fig.add_subplot()


def dashboard(
    counts: Mapping,
    importances: Mapping[str, float],
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    title: str,
    *,
    top: int = 10,
    labels: Mapping | None = None,
    colours: Mapping[str, str] | None = None,
    counts_title: str = "Classes",
    forecast_title: str = "History and forecast",
    column: str = "headcount",
):
    """Class counts (``class_counts`` with the domain's ``labels`` and ``colours``),
    feature importance, and a history with its forecast, side by side under ``title``.
    Returns the Figure."""
    fig = _figure(11.0, 3.6)  # 990 px at 90 dpi: fits the UI's markdown dialog whole
    counts_ax, importance_ax, forecast_ax = fig.subplots(1, 3, width_ratios=[1, 1.4, 1.6])
    class_counts(counts_ax, counts, labels=labels, colours=colours, title=counts_title)
    feature_importance(importance_ax, importances, top=top)
    forecast_chart(forecast_ax, history, forecast, forecast_title, column=column)
    fig.suptitle(title)
    return fig


def png_bytes(fig, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes; the figure is closed (cleared and released) afterwards."""
    _use_agg()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    if "matplotlib.pyplot" in sys.modules:  # a pyplot figure also lives in pyplot's registry
        import matplotlib.pyplot as plt

        plt.close(fig)
    fig.clear()
    return buffer.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """``![alt](data:image/png;base64,...)``, which Dagster's markdown metadata renders.

    Raises ``ValueError`` past ``MAX_MARKDOWN_BYTES`` (make the figure smaller).
    """
    safe_alt = " ".join(alt.replace("[", "(").replace("]", ")").split())
    text = f"![{safe_alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
    if len(text) > MAX_MARKDOWN_BYTES:
        raise ValueError(f"image markdown is {len(text):,} bytes, over {MAX_MARKDOWN_BYTES:,}")
    return text


def bar_chart(ax, labels: Sequence, values: Sequence[float], title: str) -> None:
    """Vertical bars with their values written on top."""
    bars = ax.bar([str(label) for label in labels], list(values), color=DEFAULT_COLOUR)
    ax.bar_label(bars, fmt=_number_format(values), padding=2, fontsize=8)
    ax.set_title(title)
    ax.margins(y=0.12)  # room for the value labels
    ax.spines[["top", "right"]].set_visible(False)


def feature_importance(ax, importances: Mapping[str, float], top: int = 15, title: str | None = None) -> None:
    """Horizontal bars of the ``top`` features by absolute importance, largest on top
    (a note instead of bars when there are none, e.g. no model yet)."""
    if not importances:
        ax.text(0.5, 0.5, "no feature importance", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title or "Feature importance")
        ax.set_axis_off()
        return
    ranked = sorted(importances.items(), key=lambda item: abs(item[1]), reverse=True)[:top]
    names = [name for name, _ in reversed(ranked)]
    values = [value for _, value in reversed(ranked)]
    bars = ax.barh(names, values, color=DEFAULT_COLOUR)
    ax.bar_label(bars, fmt="%.3g", padding=2, fontsize=8)
    ax.set_title(title or f"Feature importance (top {len(ranked)})")
    ax.margins(x=0.15)
    ax.spines[["top", "right"]].set_visible(False)


def forecast_chart(
    ax, history: pd.DataFrame, forecast: pd.DataFrame, title: str, column: str = "headcount"
) -> None:
    """History (``month``, ``column``) as a line, the forecast (``month``, ``yhat``,
    ``yhat_lower``, ``yhat_upper``) dashed with its interval shaded."""
    import matplotlib.dates as mdates

    ax.plot(pd.to_datetime(history["month"]), history[column], color=DEFAULT_COLOUR, marker="o", markersize=3, label="actual")
    months = pd.to_datetime(forecast["month"])
    ax.fill_between(months, forecast["yhat_lower"], forecast["yhat_upper"], color="#dd8452", alpha=0.25, label="interval")
    ax.plot(months, forecast["yhat"], color="#dd8452", linestyle="--", marker="o", markersize=3, label="forecast")
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)  # a narrow panel: labels must not run together
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)


def class_counts(
    ax, counts: Mapping, labels: Mapping | None = None, colours: Mapping[str, str] | None = None, title: str = "Classes"
) -> None:
    """Bars of predicted (or actual) counts per class with count and share.

    ``labels`` maps a class key (as given, or a string key lower-cased) to its display
    label, e.g. a domain's ``class_label_map``; other keys are shown as given.
    ``colours`` maps a display label to its bar colour.
    """
    labels, colours = labels or {}, colours or {}
    shown = [labels.get(key, labels.get(key.lower() if isinstance(key, str) else key, str(key))) for key in counts]
    values = [int(v) for v in counts.values()]
    total = sum(values) or 1
    bars = ax.bar(shown, values, color=[colours.get(label, DEFAULT_COLOUR) for label in shown])
    ax.bar_label(bars, labels=[f"{v:,} ({v / total:.0%})" for v in values], padding=2, fontsize=8)
    ax.set_title(title)
    ax.margins(y=0.12)
    ax.spines[["top", "right"]].set_visible(False)


# ------------------------------------------------------------------ helpers


def _figure(width: float, height: float):
    _use_agg()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _use_agg() -> None:
    """Render off-screen. Left alone once pyplot is loaded: switching then would
    close every open pyplot figure, and whoever loaded it chose its backend."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")


def _number_format(values: Sequence[float]) -> str:
    return "%d" if all(float(v).is_integer() for v in values) else "%.3g"
