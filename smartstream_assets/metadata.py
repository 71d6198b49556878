"""Asset metadata helpers: what the Dagster UI shows for a table."""

from __future__ import annotations

import dagster as dg
import pyarrow as pa

from .tables import TableSpec


def column_schema(spec: TableSpec, with_meta: bool = True) -> dg.TableSchema:
    cols = []
    if with_meta:
        cols += [
            dg.TableColumn("_op", "string", description="insert / update / delete"),
            dg.TableColumn("_commit_ts", "timestamp", description="commit time, UTC"),
            dg.TableColumn("_source_key", "string", description="raw object the change came from"),
            dg.TableColumn("_source_line", "int64", description="line (or row) in that object"),
        ]
    cols += [
        dg.TableColumn(
            name,
            type_name,
            constraints=dg.TableColumnConstraints(nullable=name not in spec.primary_key, unique=False),
        )
        for name, type_name in spec.columns.items()
    ]
    return dg.TableSchema(columns=cols)


def preview(table: pa.Table | None, rows: int = 10) -> dg.MetadataValue:
    if table is None or table.num_rows == 0:
        return dg.MetadataValue.md("_no rows_")
    return dg.MetadataValue.md(table.slice(0, rows).to_pandas().to_markdown(index=False))


def counts_table(counts: dict, key: str = "reason", value: str = "rows") -> dg.MetadataValue:
    if not counts:
        return dg.MetadataValue.md("_none_")
    lines = [f"| {key} | {value} |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in sorted(counts.items())]
    return dg.MetadataValue.md("\n".join(lines))


# ------------------------------------------------------------------ ML assets

def fairness_markdown(fairness: dict) -> str:
    parts = []
    for facet, result in fairness.items():
        parts.append(f"**{facet}**: {result.summary()}\n\n" + result.by_group.round(3).to_markdown())
    return "\n\n".join(parts) or "_no facets_"


def comparison_markdown(outcome, task) -> str:
    """The candidate's holdout metrics beside the champion's on the same holdout and each
    baseline's, with which way is better (``task.direction``)."""
    from .ml.tasks import MAX

    gate = outcome.gate
    baselines = list(gate.baselines)
    header = "| metric | better | candidate | champion (same holdout) |" + "".join(f" {b} |" for b in baselines)
    rows = [header, "|---|---|---:|---:|" + "---:|" * len(baselines)]

    def cell(value) -> str:
        return "" if value is None else f"{value:.3f}"

    for metric, value in gate.candidate.items():
        theirs = gate.champion.get(metric) if gate.champion else None
        better = "higher" if task.direction(metric) == MAX else "lower"
        rows.append(
            f"| {metric} | {better} | {cell(value)} | {cell(theirs)} |"
            + "".join(f" {cell(gate.baselines[b].get(metric))} |" for b in baselines)
        )
    rows.append(f"| worst {gate.fairness_name} | lower | {gate.fairness_difference:.3f} | |" + " |" * len(baselines))
    return "\n".join(rows)


def label_summary(domain, labelled) -> dict:
    """What the labels look like: the positive rate of a classifier's, mean and spread of a
    regressor's (per output)."""
    if domain.task.kind == "binary":
        return {"positive_rate": float(labelled[domain.target].mean()) if len(labelled) else 0.0}
    return {
        "label_summary": dg.MetadataValue.md(
            labelled[list(domain.targets)].describe().T[["mean", "std", "min", "max"]].round(4).to_markdown()
        )
    }


def prediction_summary(domain, scored) -> dict:
    """Metadata of a scored batch: positive rate and mean probability, or the mean of
    each prediction column."""
    if not len(scored):
        return {}
    if domain.task.kind == "binary":
        return {
            "predicted_positive_rate": float(scored["predicted_class"].mean()),
            "mean_probability": float(scored["probability"].mean()),
        }
    return {f"mean_{c}": float(scored[c].mean()) for c in domain.task.prediction_columns}


def baselines_markdown(candidate) -> str:
    """The candidate and each baseline on the same holdout, metric by metric."""
    if not candidate.baselines:
        return "_no baselines declared_"
    names = list(candidate.baselines)
    rows = ["| metric | candidate |" + "".join(f" {n} |" for n in names), "|---|---:|" + "---:|" * len(names)]
    for metric, value in candidate.metrics.items():
        rows.append(f"| {metric} | {value:.3f} |" + "".join(f" {candidate.baselines[n].get(metric, float('nan')):.3f} |" for n in names))
    return "\n".join(rows)


def drift_markdown(summary) -> str:
    """Per column: Evidently's drift method, its value (distance or p-value, said per
    row), threshold and decision; the project's chi2_two_sample p only for categories."""
    rows = [
        "| column | drifted | method (Evidently, decides drift) | value | value is | threshold | chi2_two_sample p (categorical only) |",
        "|---|---|---|---:|---|---:|---:|",
    ]
    items = sorted(summary.columns, key=lambda c: (not c.drifted, c.column))
    if summary.prediction is not None:
        items.append(summary.prediction)

    def number(x: float | None, p_value: bool) -> str:
        if x is None:
            return ""
        if p_value and x == 0:  # below the smallest double: scipy gives 0
            return "<1e-300"
        return f"{x:.3g}" if x < 0.001 else f"{x:.3f}"

    for c in items:
        name = f"{c.column} (prediction)" if c is summary.prediction else c.column
        if getattr(c, "reference", "champion") != "champion":
            name += f" (vs {c.reference})"
        kind = "p-value (drift when below)" if c.value_kind == "p_value" else "distance (drift when at or above)"
        value = number(c.statistic, c.value_kind == "p_value")
        chi2 = number(c.chi2_two_sample_p, True) if c.kind == "categorical" else ""
        rows.append(f"| {name} | {'yes' if c.drifted else 'no'} | {c.statistic_method} | {value} | {kind} | {c.threshold:g} | {chi2} |")
    return "\n".join(rows)

