"""The reviews domain: three aspect-based sentiment scores per review text, every hour.

The ABSA-drift system (an hourly extract of review texts from S3, BERT-family sentence
embeddings, a multi-output XGBoost model loaded from MLflow, Evidently drift, alerts,
retraining) as one domain of the graph, on the shared layer:

- ``reviews/labelled`` (``assets.reviews``): the training set, from
  ``reviews_labelled/current`` or, when ``SMARTSTREAM_REVIEWS_DB`` is set, the
  PostgreSQL table ``labelled_reviews``; the targets (``ml.absa.absa_targets``), the
  sentence embeddings (cached in the lake by text hash) and the text features;
- ``reviews/embeddings`` (hourly): the hour's reviews from ``reviews/live_current`` with
  their embeddings, what ``reviews/predictions`` scores;
- the shared features, candidate (the encoder fine-tuned on the training rows, then a
  multi-output XGBoost on 128 principal components of its vectors, text counts and
  cross-fitted TF-IDF + ridge scores of the text, Optuna), gate (a bar per output,
  better than the mean predictor, not worse than the champion), predictions and drift
  report (the packaged encoder's embedding as one signal, the predicted scores, text
  length, the product mix).

The registered model (``smartstream-reviews-absa``) is one pyfunc that takes
``review_id`` and ``text`` and ships its tuned encoder: ``mlflow models serve`` answers
texts, and batch scoring encodes each hour's texts with the champion's encoder. Drift
compares the packaged (frozen) encoder's vectors, cached in the lake: one meaning of
"the same texts" across champions.
"""

from __future__ import annotations

from ..ml.absa import OUTPUTS, TEXT_FEATURES, model_inputs
from ..ml.embeddings import EMBEDDING_COLUMNS
from . import (
    AT_LEAST,
    Cadence,
    Domain,
    DomainExtras,
    DomainPlugin,
    Embeddings,
    FineTune,
    MultiOutputRegression,
    PlainModel,
    QualityBar,
    RecentMix,
    TextInput,
    TextScores,
)

REVIEWS = Domain(
    name="reviews",
    table="reviews_labelled",
    model="absa",
    registered_model="smartstream-reviews-absa",
    id_column="review_id",
    task=MultiOutputRegression(
        outputs=OUTPUTS,
        # R² averaged over the outputs: scale-free (sentiment spans [-1, 1], the others [0, 1])
        objective="r2",
        baselines=(PlainModel("mean", "mean"),),
        # the encoder places texts by topic more than by polarity: fine-tuned per candidate on
        # its training rows (with a head of the three targets), it ships with the model
        embeddings=Embeddings(EMBEDDING_COLUMNS, components=128, fine_tune=FineTune(text_column="text", epochs=2)),
        # the words carry the polarity the embedding blurs: cross-fitted TF-IDF + ridge
        # scores of the three targets are three more inputs
        text_scores=TextScores("text"),
    ),
    numeric=(*EMBEDDING_COLUMNS, *TEXT_FEATURES),
    categorical=(),
    source="reviews/labelled",
    scoring_source="reviews/embeddings",
    text_input=TextInput(text_column="text", inputs=model_inputs),
    # per output, on the candidate's holdout, and above the mean predictor: floors that a
    # broken model misses. Measured by `make demo` on the sample (templated reviews, tuned
    # encoder, 4 trials): R² 0.876 / 0.876 / 0.824 (frozen encoder, 3 trials: 0.39 / 0.83 /
    # 0.35); on the real SemEval restaurants 0.485 / 0.740 / 0.650 (benchmarks/reviews_quality.py)
    quality_bar=QualityBar(
        metrics={
            "r2_sentiment_score": (AT_LEAST, 0.3),
            "r2_engagement_score": (AT_LEAST, 0.5),
            "r2_implicitness_degree": (AT_LEAST, 0.25),
        },
        beat_baselines={"mean": 1.0},
    ),
    predictions_table="review_predictions",  # when SMARTSTREAM_PREDICTIONS_DB is set
    requires_approval=True,
    # the drift report compares the embedding (one signal for its 384 dimensions), the
    # text length in words and, once there are earlier hours, the product mix, and the
    # predicted sentiment: any one feature signal drifting is dataset drift (1/3 >= 0.3)
    drift_share_threshold=0.3,
    # any of the three signals flags the hour: each is tested at 5% / 3, so an ordinary
    # hour is flagged at most 5% of the time (three 5% tests flagged 4 of the sample's 24)
    drift_false_alarm_rate=0.05,
    # the product mix: the labelled set has no product, so each hour's mix is compared with
    # the previous 24 scored hours' (a two-proportion Z-test), once they hold 200 reviews
    drift_recent=RecentMix(columns=("product",), partitions=24, min_rows=200),
    retrain_cooldown_hours=6.0,
    # at most 1000 reference rows: Evidently then decides with tests that weigh the hour's
    # own size (K-S p-values) instead of distances (Wasserstein) that a 30-review hour
    # crosses by chance (measured: a clean sample hour read 0.13 > 0.1 on text length)
    reference_rows=1000,
    reference_from_holdout=True,
    positive_label="",
    scoring_cadence=Cadence(every="hour", start="2026-11-20-00:00", schedule_minute=10, label="hourly",
                            description="each hour's reviews scored 10 minutes after it ends"),  # fmt: skip
    estimators=("xgboost",),
    # a trial fits XGBoost on ~2,000 x 133 inputs three times: 4 trials keep `make demo` quick
    search_trials=4,
    drift_features=(*EMBEDDING_COLUMNS, "n_words"),
    drift_prediction_columns=("prediction_sentiment_score",),
    prediction_label="sentiment, engagement and implicitness of the review",
    summary_metrics=(("r2_sentiment_score", "R² sentiment"), ("r2_engagement_score", "R² engagement"),
                     ("r2_implicitness_degree", "R² implicitness")),  # fmt: skip
)


def _extras() -> DomainExtras:
    from ..assets.reviews import REVIEWS_ASSETS, REVIEWS_SCORING_KEYS

    return DomainExtras(assets=REVIEWS_ASSETS, scoring_keys=REVIEWS_SCORING_KEYS)


def latest_hour(lake) -> str | None:
    """The newest complete hour with reviews in ``reviews/live_current`` (None: no reviews yet)."""
    import pandas as pd

    from ..delta import read_current

    found = read_current(lake, "reviews", ["created_at"])
    if found is None:
        return None
    times = pd.to_datetime(found.column("created_at").to_pandas(), utc=True)
    if times.empty:
        return None
    partitions = REVIEWS.scoring_cadence.partitions_def()
    hour = times.max().floor("h")
    key = hour.strftime("%Y-%m-%d-%H:%M")
    return key if partitions.has_partition_key(key) else None


PLUGIN = DomainPlugin(domain=REVIEWS, extras=_extras, latest_partition=latest_hour)
