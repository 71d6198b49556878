"""What only the employees domain has: the headcount forecast and the prototype's dashboard.

The attrition model, anomalies, predictions and drift come from ``assets.ml``.
"""


import dagster as dg
import pandas as pd

from ..domains.employees import ATTRITION, left_the_company
from ..keys import asset_keys, domain_asset_key, domain_report_key, forecast_key, spelled, trusted_asset_key
from ..lake import Lake
from ..resources import LakeResource, MlflowResource
from .ml import write_frame

HEADCOUNT_KEY = domain_asset_key(ATTRITION.name, "headcount_forecast")  # employees/headcount_forecast
DASHBOARD_KEY = domain_asset_key(ATTRITION.name, "dashboard")  # employees/dashboard
# lake keys (zone first, unchanged)
HISTORY = forecast_key("employees_headcount", "history.parquet")
FORECAST = forecast_key("employees_headcount", "forecast.parquet")
DASHBOARD_PNG = domain_report_key(ATTRITION.name, "dashboard.png")
FORECAST_MONTHS = 6


@dg.asset(
    key=HEADCOUNT_KEY,
    deps=[trusted_asset_key(ATTRITION.table)],
    group_name=ATTRITION.name,
    kinds={"prophet", "parquet"},
    description=(
        "Monthly active headcount from the trusted change log (hires = inserts, exits = deletes or "
        f"LeaveOrNot turning 1) and a Prophet forecast of the next {FORECAST_MONTHS} months with intervals."
    ),
)
def headcount_forecast(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    from ..ml import plots
    from ..ml.forecast import forecast_monthly, monthly_active_count

    store = lake.get()
    changes = read_change_log(store, ATTRITION.table)
    if changes.empty:
        raise dg.Failure(f"{spelled(trusted_asset_key(ATTRITION.table))} is empty: ingest raw data first")
    history = monthly_active_count(changes, [ATTRITION.id_column], exit_when=left_the_company)
    forecast = forecast_monthly(history, "headcount", periods=FORECAST_MONTHS)
    write_frame(store, HISTORY, history)
    write_frame(store, FORECAST, forecast)
    fig, ax = plots.new_figure(7.0, 3.5)
    plots.forecast_chart(ax, history, forecast, title="Active headcount and forecast")
    png = plots.png_bytes(fig)
    last = history.iloc[-1]
    return dg.MaterializeResult(
        metadata={
            "months_of_history": len(history),
            "headcount_last_month": int(last["headcount"]),
            "last_month": str(pd.Timestamp(last["month"]).date()),
            "forecast": dg.MetadataValue.md(forecast.round(1).to_markdown(index=False)),
            "plot": dg.MetadataValue.md(plots.markdown_image(png, "headcount forecast")),
            "history_path": dg.MetadataValue.path(store.describe(HISTORY)),
            "forecast_path": dg.MetadataValue.path(store.describe(FORECAST)),
        }
    )


@dg.asset(
    key=DASHBOARD_KEY,
    ins={"features": dg.AssetIn(asset_keys(ATTRITION)["features"])},  # through the lake IO manager
    deps=[asset_keys(ATTRITION)["deployment"], HEADCOUNT_KEY],
    group_name=ATTRITION.name,
    kinds={"png"},
    description="The prototype's 3-panel figure: stay vs leave, the champion's feature importance, headcount history and forecast.",
)
def dashboard(context: dg.AssetExecutionContext, features: pd.DataFrame, lake: LakeResource, mlflow: MlflowResource) -> dg.MaterializeResult:
    from ..ml import plots
    from ..ml.registry import CHAMPION

    store = lake.get()
    stay, leave = ATTRITION.class_labels
    counts = {0: int(features[ATTRITION.target].eq(0).sum()), 1: int(features[ATTRITION.target].eq(1).sum())}
    registry = mlflow.registry()
    champion = registry.version(ATTRITION.registered_model, CHAMPION)
    importance = registry.load_dict(champion.run_id, "feature_importance.json") if champion else {}
    history, forecast = store.read_parquet(HISTORY).to_pandas(), store.read_parquet(FORECAST).to_pandas()
    title = f"employees — attrition champion v{champion.version if champion else 'none'}"
    figure = plots.dashboard(
        counts,
        importance,
        history,
        forecast,
        title,
        labels=ATTRITION.class_label_map,
        colours=ATTRITION.class_colour_map,
        counts_title=f"{stay} / {leave.lower()}",
        forecast_title="Headcount and forecast",
    )
    png = plots.png_bytes(figure)
    store.write_bytes(DASHBOARD_PNG, png)
    return dg.MaterializeResult(
        metadata={
            "dashboard": dg.MetadataValue.md(plots.markdown_image(png, "employees dashboard")),
            "path": dg.MetadataValue.path(store.describe(DASHBOARD_PNG)),
            "champion_version": champion.version if champion else "none",
            stay.lower(): counts[0],
            leave.lower(): counts[1],
        }
    )


def read_change_log(lake: Lake, table: str) -> pd.DataFrame:
    """Every trusted change of ``table`` (the Delta table's latest version) as one frame."""
    from ..delta import read_trusted

    found = read_trusted(lake, table)
    if found.num_rows == 0:
        return pd.DataFrame()
    return found.drop_columns(["ingest_date"]).to_pandas()


EMPLOYEES_ASSETS = [headcount_forecast, dashboard]
