"""Data and prediction drift between a reference sample and a current one: the one
drift function every domain calls, with its own columns.

Evidently decides; this module only asks it the right questions and reads the
answers into plain dataclasses that assets put into metadata and JSON:

- per column, Evidently's default method (``ValueDrift`` with no method), which it
  picks by the size of the REFERENCE sample: more than 1000 rows -> normed
  Wasserstein distance for numbers (Jensen-Shannon when a number has <= 5 distinct
  values) and Jensen-Shannon distance for categories, threshold 0.1, drifted when
  distance >= threshold; 1000 rows or fewer -> p-values of K-S (numbers), chi-square
  (categories, or numbers with 3-5 values) or a two-proportion Z-test (two values),
  threshold 0.05, drifted when p < threshold (K-S: p <= threshold). That method,
  as Evidently names it, is ``ColumnDrift.statistic_method``, its value
  ``ColumnDrift.statistic``, whether that value is a p-value or a distance
  ``ColumnDrift.value_kind``, and Evidently's own test result ``drifted``;
- per column, a second ``ValueDrift`` with a fixed two-sample test whose value is
  a p-value: ``ColumnDrift.p_value``, reported alongside, never used for the
  decision. Numbers: Evidently's "ks" (scipy's ks_2samp). Categories: a chi-square
  test of homogeneity registered with Evidently as "chi2_two_sample" (see
  ``_register_two_sample_chisquare`` for why not Evidently's "chisquare"); the
  categories' one is also ``ColumnDrift.chi2_two_sample_p`` (None for numbers),
  the column the drift table shows;
- the prediction columns (if any: one probability, one prediction, or one per output)
  the same way, reported apart from the features and not counted in the drift share;
  prediction drift is any of them drifting;
- per group of embedding columns (``embeddings=``, e.g. the 384 ``emb_*`` columns of a
  sentence encoder), ONE signal: Evidently's ``EmbeddingsDrift`` on the group as a
  whole (never its columns one by one), with the method of ``EMBEDDING_DRIFT``
  (chosen by measurement, see there). The group is one ``ColumnDrift`` (kind
  "embedding", no p-value) and one feature column in the drift share.

Evidently is imported inside the function (it takes seconds to import).
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace

import pandas as pd

# The fixed tests that give every column a p-value, whatever the sample size.
P_VALUE_TEST = {"numerical": "ks", "categorical": "chi2_two_sample"}
# Evidently's default methods are p-value tests up to this many reference rows (distances above)
P_VALUE_REFERENCE_ROWS = 1000

# What a drift method's value is: "p_value" (small = drift) or "distance" (large =
# drift; PSI and KL divergence count as distances here). Evidently (0.7.23) has no
# such flag, so this reads its method names: the ones ending in "p_value" (K-S,
# chi-square, Z-test: its defaults) and these other tests, whose value is a p-value.
_P_VALUE_METHODS = frozenset(
    {"Anderson-Darling", "Cramer-von Mises", "Epps-Singleton", "Fisher's Exact test",
     "g_test", "Mann-Whitney U-rank test", "t_test"}
)  # fmt: skip


# Embedding drift: the methods of Evidently's EmbeddingsDrift (0.7.23), by the name
# Evidently reports them with, and how ColumnDrift.statistic_method names them. All
# their scores grow with drift ("distance" value kind).
EMBEDDING_METHODS = {
    "model": "model (domain classifier ROC AUC)",
    "distance": "distance (euclidean distance between means)",
    "mmd": "mmd (maximum mean discrepancy)",
    "ratio": "ratio (share of drifted components)",
}

# The parameters per method; ``drift_report(embedding_method=)`` picks one, default
# EMBEDDING_METHOD. Chosen by ``benchmarks/reviews_drift.py``: all-MiniLM-L6-v2 vectors
# of the real SemEval-2014 sentences, reference = 2,000 restaurant sentences, current =
# an hour of N other restaurant sentences (a flag is a false alarm), of N laptop
# sentences, or of half each; 20 seeded draws per cell, Evidently's decision:
#
#   method (all bootstrap, quantile 0.95)   N    false alarms  laptops  half laptops  s/report
#   distance (chosen)                       30   1/20          20/20    20/20         0.57
#   distance                                100  0/20          20/20    20/20         0.37
#   model (domain classifier ROC AUC)       30   1/20          20/20    18/20         0.78
#   model                                   100  0/20          20/20    20/20         0.91
#   mmd                                     30   1/20          20/20    20/20         6.2
#
# A whole report of 2,000 x 40 rows x 384 dimensions: 0.37 s with distance, 0.62 s
# with model, 4.7 s with mmd (half of it the redraw of its bootstrap threshold for the
# summary; two CPUs, shared with other jobs). Over more splits of
# the method alone (N=30, 60 splits): false alarms distance 2%, model 5%, mmd 3%;
# half laptops flagged 100%, 97%, 100%. N=100, 40 splits: false alarms 7%, 10%, 7%.
# A 300-row reference (N=30, 40 splits): false alarms 3% each; half laptops 100%
# (distance), 80% (model). Hence distance: as honest as the others, the most
# sensitive to a partial topic shift on a small hour, and the fastest.
#
# The bootstrap (``bootstrap=True``) is what makes an hour of 20-40 rows honest: it
# draws 100 pairs of samples of the two sizes from the reference alone and flags
# drift above their ``quantile_probability`` quantile, a 5% test whatever the sizes. A
# fixed threshold is not: the model method with Evidently's 0.55 ROC AUC flagged 32%
# of same-distribution 30-row hours. MMD's default quantile with bootstrap (0.05)
# flagged 10 of 10 (it compares with the bootstrap's 5% quantile); 0.95 is the test.
# Ratio (share of dimensions drifted by Wasserstein 0.1, no bootstrap) flagged each of 3
# same-distribution 30-row hours: 99% of the dimensions "drift" on 30 rows.
# PCA (``pca_components=20``) does not pay: it made the methods slower (PCA costs more
# than the 384-dimension means it shortens) and the model method less sensitive (half
# laptops 83%).
EMBEDDING_DRIFT = {
    "distance": {"dist": "euclidean", "bootstrap": True, "quantile_probability": 0.95, "pca_components": None},
    "model": {"bootstrap": True, "quantile_probability": 0.95, "pca_components": None},
    "mmd": {"bootstrap": True, "quantile_probability": 0.95, "pca_components": None},
    "ratio": {"component_stattest": "wasserstein", "component_stattest_threshold": 0.1, "threshold": 0.2, "pca_components": None},
}
EMBEDDING_METHOD = "distance"

# Evidently's EmbeddingsDrift also draws the two samples' densities on a t-SNE map
# of up to 2,500 rows each: 7 s for 2,000 + 40 rows of 384 dimensions on two CPUs,
# 40 s and more when they are busy (its OpenMP threads wait on each other), against
# 0.4 s for the test itself. The HTML's map is a 2-component PCA projection instead
# (``_embedding_run``): a different picture of the same samples, in under a
# tenth of a second. The drift score and decision do not use the map.


def value_kind(method: str) -> str:
    """``"p_value"`` or ``"distance"`` for a method named as Evidently reports it."""
    return "p_value" if method.endswith("p_value") or method in _P_VALUE_METHODS else "distance"


@dataclass
class ColumnDrift:
    """One column's drift: Evidently's default method, its value, threshold and
    decision; plus a p-value of a fixed two-sample test, reported alongside."""

    column: str
    kind: str  # "numerical", "categorical" or "embedding" (a group of columns, ``column`` is its name)
    statistic: float  # the value of ``statistic_method``: a distance, or a p-value (see ``value_kind``)
    statistic_method: str  # Evidently's method for the decision, as it names it, e.g. "Wasserstein distance (normed)", "K-S p_value"
    p_value: float | None  # from ``test_method``; None for embeddings
    test_method: str | None  # "ks" or "chi2_two_sample"; None for embeddings
    threshold: float  # of ``statistic_method`` (embeddings with bootstrap: the bootstrap quantile it was compared with)
    drifted: bool  # Evidently's decision with ``statistic_method``
    value_kind: str = "distance"  # of ``statistic``: "distance" (drift when >= threshold) or "p_value" (drift when below it)
    chi2_two_sample_p: float | None = None  # the project's two-sample chi-square p-value; categorical columns only
    # what it was compared with: the model version's reference ("champion"), or another
    # sample (e.g. "previous 24 partitions (672 rows)", ``DriftSummary.with_columns``)
    reference: str = "champion"

    @property
    def method(self) -> str:
        """The method Evidently decided drift with (``statistic_method``)."""
        return self.statistic_method

    @property
    def value(self) -> float:
        """That method's value (``statistic``): a distance or a p-value, per ``value_kind``."""
        return self.statistic


@dataclass
class DriftSummary:
    """Feature drift (``columns``, ``drift_share``, ``dataset_drift``) and prediction
    drift (``prediction``, ``prediction_drift``; None without a prediction column)."""

    drift_share: float  # share of feature columns that drifted
    dataset_drift: bool  # drift_share >= drift_share_threshold
    columns: list[ColumnDrift]
    predictions: list[ColumnDrift]  # one per prediction column (probability, prediction, prediction_<output>)
    prediction_drift: bool | None  # any prediction column drifted; None without prediction columns
    n_reference: int
    n_current: int
    drift_share_threshold: float = 0.5
    # with ``drift_report(false_alarm_rate=)``: that rate and the level of each signal's test
    false_alarm_rate: float | None = None
    test_level: float | None = None
    # Evidently's snapshot.dict()["metrics"] (ids, configs, values: a few KB), for the JSON report.
    evidently_metrics: list[dict] = field(default_factory=list, repr=False, compare=False)

    @property
    def prediction(self) -> ColumnDrift | None:
        """The first prediction column's drift (the only one for one-output tasks)."""
        return self.predictions[0] if self.predictions else None

    def drifted_columns(self) -> list[ColumnDrift]:
        """The feature columns that drifted, in the order they were given."""
        return [c for c in self.columns if c.drifted]

    def with_columns(self, extra: list[ColumnDrift]) -> "DriftSummary":
        """This summary with ``extra`` feature columns (from a report against another
        reference) appended: the drift share and the dataset decision count them."""
        columns = [*self.columns, *extra]
        share = sum(c.drifted for c in columns) / len(columns)
        return replace(self, columns=columns, drift_share=share, dataset_drift=share >= self.drift_share_threshold)

    def to_json(self) -> dict:
        """A JSON-safe dict (no NaN or infinity: they become None)."""
        return json_safe(
            {
                "drift_share": self.drift_share,
                "drift_share_threshold": self.drift_share_threshold,
                "dataset_drift": self.dataset_drift,
                "drifted_columns": [c.column for c in self.drifted_columns()],
                "columns": [asdict(c) for c in self.columns],
                "prediction": asdict(self.prediction) if self.prediction else None,
                "predictions": [asdict(p) for p in self.predictions],
                "prediction_drift": self.prediction_drift,
                "n_reference": self.n_reference,
                "n_current": self.n_current,
                "false_alarm_rate": self.false_alarm_rate,
                "test_level": self.test_level,
                "evidently": {"metrics": self.evidently_metrics},
            }
        )


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numerical: list[str],
    categorical: list[str],
    prediction_column: str | None = None,
    drift_share: float = 0.5,
    prediction_columns: list[str] | tuple[str, ...] = (),
    embeddings: dict[str, list[str]] | None = None,
    embedding_method: str = EMBEDDING_METHOD,
    false_alarm_rate: float | None = None,
    other_signals: int = 0,
) -> tuple[DriftSummary, str]:
    """Compare ``current`` with ``reference`` on the given columns.

    ``embeddings`` maps a group name to its columns (e.g. ``{"text_embedding":
    list(EMBEDDING_COLUMNS)}``): each group is tested as one signal with Evidently's
    ``EmbeddingsDrift`` and ``embedding_method`` (a key of ``EMBEDDING_DRIFT``), and
    is one entry of ``summary.columns`` and one feature column of the drift share.

    ``false_alarm_rate``: the chance that a report on a sample from the reference's own
    distribution flags anything (a feature or a prediction), when any one signal
    drifting flags it (``drift_share`` at most 1 / the feature signals). Each of the k
    signals (feature columns, embedding groups, prediction columns) is then tested at
    level ``false_alarm_rate / k`` (Bonferroni: the k tests together stay within the
    rate): the p-value tests' threshold, and the embedding bootstrap's quantile
    ``1 - level``. Three 5% tests alone flag about 14% of ordinary samples. The
    level needs p-value tests for the columns: a reference of at most 1000 rows (above
    it Evidently decides them by distances, which have no level); a larger one is
    refused unless the embedding groups are all there is. ``other_signals``: signals of
    another report that flag the same window (``DriftSummary.with_columns``); they share
    the rate, so the level is ``false_alarm_rate / (k + other_signals)``.

    Returns the summary and Evidently's report as a standalone HTML document.
    The dataset has drifted when the share of drifted feature columns is at least
    ``drift_share``. Raises ``ValueError`` when a column is missing or a sample is
    empty (a drift check on nothing must not pass silently), or when an embedding
    column is also listed as another column.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    _register_two_sample_chisquare()
    groups = {str(name): list(group) for name, group in (embeddings or {}).items()}
    features = list(numerical) + list(categorical)
    if not features and not groups:
        raise ValueError("no feature columns to compare")
    if len(set(features)) < len(features):
        raise ValueError(f"a column is listed twice in numerical + categorical: {features}")
    kinds = {c: "numerical" for c in numerical} | {c: "categorical" for c in categorical}
    predicted = ([prediction_column] if prediction_column is not None else []) + [c for c in prediction_columns if c != prediction_column]
    for column in predicted:
        if column in kinds:
            raise ValueError(f"prediction column {column!r} is also a feature column")
        numeric = pd.api.types.is_numeric_dtype(reference[column]) if column in reference else True
        kinds[column] = "numerical" if numeric else "categorical"
    embedded = _check_embeddings(groups, kinds, embedding_method)
    _check_inputs(reference, current, list(kinds) + embedded)
    level = None
    if false_alarm_rate is not None:
        if not 0 < false_alarm_rate < 1:
            raise ValueError(f"false_alarm_rate must be in (0, 1) (got {false_alarm_rate!r})")
        if kinds and len(reference) > P_VALUE_REFERENCE_ROWS:  # (an embedding's bootstrap has a level at any size)
            raise ValueError(
                f"a false-alarm rate needs p-value tests, which Evidently runs on a reference of at most "
                f"{P_VALUE_REFERENCE_ROWS} rows (got {len(reference)}): sample the reference down"
            )
        level = false_alarm_rate / (len(kinds) + len(groups) + max(0, int(other_signals)))

    columns = list(kinds)
    # Every kind of column given, so Evidently infers none: the embedding columns are
    # only in ``embeddings``, never numerical columns of their own.
    definition = DataDefinition(
        numerical_columns=[c for c in columns if kinds[c] == "numerical"],
        categorical_columns=[c for c in columns if kinds[c] == "categorical"],
        text_columns=[], datetime_columns=[], unknown_columns=[], list_columns=[],
        embeddings=groups or None,
    )  # fmt: skip
    # The preset makes exactly these (no method, no threshold) for the features, so
    # their ids find its results; the prediction's is added to the report below.
    # (with a level: its threshold, which the preset then gives its columns too)
    default = {c: ValueDrift(column=c, threshold=level) for c in columns}
    with_p = {c: ValueDrift(column=c, method=P_VALUE_TEST[kinds[c]]) for c in columns}
    metrics = [DataDriftPreset(columns=features, drift_share=drift_share, threshold=level)] if features else []
    metrics += [*with_p.values(), *(default[c] for c in predicted)]
    embedding_metrics = {name: _embeddings_drift(name, embedding_method, level) for name in groups}
    metrics += embedding_metrics.values()
    # Only the compared columns go in: Evidently copies what it is given per column.
    with _embedding_run(bool(groups)):
        snapshot = Report(metrics, include_tests=True).run(
            current_data=Dataset.from_pandas(current[columns + embedded], data_definition=definition),
            reference_data=Dataset.from_pandas(reference[columns + embedded], data_definition=definition),
        )
        thresholds = {
            name: _embedding_threshold(metric.drift_method, reference[groups[name]], len(current))
            for name, metric in embedding_metrics.items()
        }  # fmt: skip

    result = snapshot.dict()
    values = {m["id"]: m for m in result["metrics"]}
    # A ValueDrift carries its decision only as its test's status: FAIL = drift detected.
    failed = {t["metric_config"]["metric_id"]: _status(t["status"]) == "FAIL" for t in result["tests"]}

    def column_drift(column: str) -> ColumnDrift:
        score, pvalue = default[column].metric_id, with_p[column].metric_id
        if score not in values or score not in failed or pvalue not in values:
            raise RuntimeError(f"Evidently returned no drift result for column {column!r}")
        config = values[score]["config"]
        method, p_value = str(config["method"]), float(values[pvalue]["value"])
        return ColumnDrift(
            column=column,
            kind=kinds[column],
            statistic=float(values[score]["value"]),
            statistic_method=method,
            p_value=p_value,
            test_method=P_VALUE_TEST[kinds[column]],
            threshold=float(config["threshold"]),
            drifted=failed[score],
            value_kind=value_kind(method),
            chi2_two_sample_p=p_value if kinds[column] == "categorical" else None,
        )

    def embedding_drift(name: str) -> ColumnDrift:
        metric = embedding_metrics[name]
        if metric.metric_id not in values:
            raise RuntimeError(f"Evidently returned no drift result for embeddings {name!r}")
        # The new API's value is the score alone; the decision is in the legacy
        # EmbeddingsDriftMetricResults the metric is computed with, which the
        # snapshot's context keeps (Evidently 0.7.23 makes no test for this metric).
        found = [
            r for r, _ in snapshot.context._legacy_metrics.values()
            if type(r).__name__ == "EmbeddingsDriftMetricResults" and r.embeddings_name == name
        ]  # fmt: skip
        if len(found) != 1:
            raise RuntimeError(f"Evidently kept no drift decision for embeddings {name!r}")
        score = float(values[metric.metric_id]["value"])
        if not math.isclose(score, float(found[0].drift_score), rel_tol=1e-9, abs_tol=1e-12):
            raise RuntimeError(f"Evidently's score and decision for embeddings {name!r} disagree")
        return ColumnDrift(
            column=name,
            kind="embedding",
            statistic=score,
            statistic_method=EMBEDDING_METHODS[embedding_method],
            p_value=None,
            test_method=None,
            threshold=thresholds[name],
            drifted=bool(found[0].drift_detected),
            value_kind="distance",
        )

    feature_drift = [column_drift(c) for c in features] + [embedding_drift(g) for g in groups]
    share = sum(c.drifted for c in feature_drift) / len(feature_drift)
    prediction_drift = [column_drift(c) for c in predicted]
    if level is not None:
        by_distance = [c.column for c in feature_drift + prediction_drift if c.kind != "embedding" and c.value_kind != "p_value"]
        if by_distance:  # the row rule above should make this impossible: a level on a distance would be meaningless
            raise RuntimeError(f"Evidently decided {', '.join(by_distance)} by a distance: a false-alarm rate cannot apply")
    summary = DriftSummary(
        drift_share=share,
        dataset_drift=share >= drift_share,
        columns=feature_drift,
        predictions=prediction_drift,
        prediction_drift=any(p.drifted for p in prediction_drift) if prediction_drift else None,
        n_reference=len(reference),
        n_current=len(current),
        drift_share_threshold=drift_share,
        false_alarm_rate=false_alarm_rate,
        test_level=level,
        evidently_metrics=result["metrics"],
    )
    # get_html_str, not save_html: in 0.7.23 save_html silently writes nothing when
    # handed a file object, and the caller decides where the HTML goes.
    return summary, snapshot.get_html_str(as_iframe=False)


# ------------------------------------------------------------------ helpers

_REGISTERED = False


def _register_two_sample_chisquare() -> None:
    """Register "chi2_two_sample" with Evidently: scipy's chi-square test of
    homogeneity on the 2 x k table of category counts (reference, current).

    Hand-written on purpose (a few lines around scipy): Evidently's own "chisquare"
    (0.7.23) is a goodness-of-fit test that takes the reference counts as exact
    expected frequencies, ignoring the reference's own sampling noise. Measured on
    identical distributions (3 categories, 300 trials at alpha 0.05) it flags drift
    in 18% of 800-vs-500 samples, 22% of 1000-vs-1000 and 86% of 5000-vs-100000;
    this test flags 5%, 6% and 3%. Without continuity correction it equals the
    two-proportion Z-test that Evidently uses for two categories.
    """
    global _REGISTERED
    if _REGISTERED:
        return
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    def two_sample_chisquare(reference: pd.Series, current: pd.Series, feature_type, threshold: float):
        from scipy.stats import chi2_contingency

        counts = pd.concat([reference.value_counts(), current.value_counts()], axis=1).fillna(0)
        if len(counts) < 2:  # one category on both sides: nothing can differ
            return 1.0, False
        p_value = float(chi2_contingency(counts.to_numpy().T, correction=False)[1])
        return p_value, p_value < threshold

    register_stattest(
        StatTest(
            name=P_VALUE_TEST["categorical"],
            display_name="chi-square two-sample p_value",
            allowed_feature_types=[ColumnType.Categorical],
            default_threshold=0.05,
        ),
        two_sample_chisquare,
    )
    _REGISTERED = True


def _check_embeddings(groups: dict[str, list[str]], kinds: dict[str, str], method: str) -> list[str]:
    """The embedding columns of all groups, in order; ValueError when a group is
    empty, a column is in two groups or also another column, or the method unknown."""
    if not groups:
        return []
    if method not in EMBEDDING_DRIFT:
        raise ValueError(f"unknown embedding drift method {method!r}: one of {sorted(EMBEDDING_DRIFT)}")
    columns: list[str] = []
    for name, group in groups.items():
        if not group:
            raise ValueError(f"embedding group {name!r} has no columns")
        if name in kinds:
            raise ValueError(f"embedding group {name!r} has the name of a column")
        columns += group
    if len(set(columns)) < len(columns):
        raise ValueError("an embedding column is listed twice (in one group or in two)")
    both = [c for c in columns if c in kinds]
    if both:
        raise ValueError(f"embedding columns also listed as numerical, categorical or prediction columns: {both[:5]}")
    return columns


def _embeddings_drift(name: str, method: str, level: float | None = None):
    """Evidently's EmbeddingsDrift of group ``name`` with ``EMBEDDING_DRIFT[method]``;
    with a ``level``, a bootstrap method flags above its ``1 - level`` quantile."""
    from evidently.metrics import EmbeddingsDrift
    from evidently.metrics.embeddings import DistanceDriftMethod, MMDDriftMethod, ModelDriftMethod, RatioDriftMethod

    cls = {"model": ModelDriftMethod, "distance": DistanceDriftMethod, "mmd": MMDDriftMethod, "ratio": RatioDriftMethod}[method]
    params = dict(EMBEDDING_DRIFT[method])
    if level is not None and params.get("bootstrap"):
        params["quantile_probability"] = 1 - level
    return EmbeddingsDrift(embeddings_name=name, drift_method=cls(**params))


def _embedding_threshold(method, reference: pd.DataFrame, n_current: int) -> float:
    """What Evidently compared the score with: the method's fixed threshold, or with
    bootstrap the quantile it drew (Evidently does not report it; this redraws it the
    way Evidently 0.7.23 does, with the same seeds, for the summary and the table. The
    decision stays Evidently's own)."""
    import numpy as np

    if not getattr(method, "bootstrap", None):
        return float(method.threshold)
    rounds, q = 100, 100 * method.quantile_probability  # Evidently's N_BOOTSTRAP
    n_reference = len(reference)
    name = type(method).__name__
    if name == "ModelDriftMethod":
        # The held-out half of the domain classifier's data (only its size and labels
        # matter), and the ROC AUC of random scores on it.
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import train_test_split

        labels = np.r_[np.ones(n_reference, int), np.zeros(n_current, int)]
        test = train_test_split(labels, test_size=0.5, random_state=42, shuffle=True)[1]
        aucs = [roc_auc_score(test, np.random.RandomState(i).rand(len(test))) for i in range(rounds)]
        return float(np.percentile(aucs, q))
    vectors = reference.to_numpy()
    if method.pca_components:
        from sklearn.decomposition import PCA

        vectors = PCA(n_components=method.pca_components, random_state=0).fit_transform(vectors)
    if name == "DistanceDriftMethod":
        # Two samples of the reference, of about the reference's and the current's
        # sizes: the distance between their means.
        from evidently.legacy.metrics.data_drift.embedding_drift_methods import DISTANCE_DICT

        distance = DISTANCE_DICT[method.dist]
        b_ref = int(n_reference**2 / (n_reference + n_current))
        b_cur = int(n_current * n_reference / (n_reference + n_current))
        # Row i of ``counts``: how often draw i took each reference row (the stream of
        # Evidently's np.random.seed(i)); the draws' means are then one product.
        counts = np.zeros((2 * rounds, n_reference))
        for i in range(rounds):
            rng = np.random.RandomState(i)
            counts[2 * i] = np.bincount(rng.choice(n_reference, b_ref), minlength=n_reference) / b_ref
            counts[2 * i + 1] = np.bincount(rng.choice(n_reference, b_cur), minlength=n_reference) / b_cur
        means = counts @ np.asarray(vectors, dtype=np.float64)  # Evidently: pandas means (float rounding apart)
        draws = [distance(means[2 * i], means[2 * i + 1]) for i in range(rounds)]
        return float(np.percentile(draws, q))
    if name == "MMDDriftMethod":
        from evidently.legacy.metrics.data_drift.embedding_drift_methods import MMD2u_bstrp
        from sklearn.metrics import pairwise_distances, pairwise_kernels

        x = pd.DataFrame(vectors)
        sigma2 = np.median(pairwise_distances(x.sample(min(n_reference, 1000), random_state=0), metric="euclidean")) ** 2
        kernel = pairwise_kernels(x, metric="rbf", gamma=1.0 / sigma2)
        x_size = max(int(n_reference * n_reference / (n_reference + n_current)), 1)
        y_size = max(int(n_reference * n_current / (n_reference + n_current)), 1)
        draws = []
        for i in range(rounds):
            rng = np.random.RandomState(i)
            x_idx, y_idx = rng.choice(n_reference, x_size), rng.choice(n_reference, y_size)
            draws.append(MMD2u_bstrp(kernel, x_size, y_size, x_idx, y_idx))
        return float(np.percentile(draws, q))
    return float("nan")  # a method this module does not know: no threshold to show


_PLOT_LOCK = threading.Lock()


class _PcaMap:
    """Stands for ``sklearn.manifold.TSNE`` in Evidently's embedding drift picture."""

    def __init__(self, n_components: int = 2, **_):
        self.n_components = n_components

    def fit_transform(self, X):
        from sklearn.decomposition import PCA

        return PCA(n_components=self.n_components, svd_solver="covariance_eigh").fit_transform(X)


@contextmanager
def _embedding_run(active: bool):
    """Within (when ``active``): Evidently's embedding drift picture (a t-SNE map in
    0.7.23, by its module's name ``TSNE``) drawn on a PCA projection instead, and
    numpy / scikit-learn on one thread. The bootstrap's many small products gain
    nothing from threads, and lose most to them when the CPUs are busy: a report of
    2,000 x 40 rows took 1-5 s with BLAS / OpenMP threads on two busy CPUs, 0.6 s on one."""
    if not active:
        yield
        return
    from evidently.legacy.metrics.data_drift import embeddings_drift
    from threadpoolctl import threadpool_limits

    with _PLOT_LOCK, threadpool_limits(limits=1):
        saved, embeddings_drift.TSNE = embeddings_drift.TSNE, _PcaMap
        try:
            yield
        finally:
            embeddings_drift.TSNE = saved


def _check_inputs(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]) -> None:
    for name, frame in (("reference", reference), ("current", current)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} data lacks columns {missing}")
        if frame.empty:
            raise ValueError(f"{name} data is empty")


def _status(status) -> str:
    # TestStatus is a str Enum in the live result, a plain string after a JSON round trip.
    return str(getattr(status, "value", status))


def json_safe(value):
    """A JSON-safe copy: numpy scalars as Python ones, NaN, infinity and missing values as
    None, timestamps as ISO strings, anything else (enums, configs) as its string."""
    from datetime import date, datetime

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return None if pd.isna(value) else value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # enums and anything else Evidently puts in a config
