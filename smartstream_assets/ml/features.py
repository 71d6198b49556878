"""The preprocessing that lives inside every fitted pipeline, so training and scoring
cannot skew: the same encoders and scalers, fitted once, travel with the model."""

from __future__ import annotations


def build_preprocessor(numeric: list[str], categorical: list[str], embeddings=None, seed: int = 42, text_scores=None, outputs=()):
    """Categories as ordinal codes, then everything standard-scaled.

    The prototype label-encoded the categorical columns and standard-scaled them
    (LabelEncoder + StandardScaler); OrdinalEncoder is LabelEncoder for features.
    A category never seen in training becomes -1 at scoring instead of failing.

    ``embeddings`` (``tasks.Embeddings``): those numeric columns are one vector, projected
    on its first principal components (``pca0`` ..) instead of being scaled one by one.
    ``text_scores`` (``tasks.TextScores``): its text column becomes one cross-fitted
    TF-IDF + ridge score per output (``text_<output>``, ``ml.text_scores``).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder, StandardScaler

    parts = []
    if embeddings is not None:
        vector = [c for c in numeric if c in set(embeddings.columns)]
        numeric = [c for c in numeric if c not in set(embeddings.columns)]
        from .pca import CappedPCA

        parts.append(("embedding", CappedPCA(n_components=embeddings.components, random_state=seed), vector))
    if text_scores is not None:
        from .text_scores import CrossFittedTextScores

        scorer = CrossFittedTextScores(
            outputs=tuple(outputs), ngram_max=text_scores.ngram_max, min_df=text_scores.min_df,
            alpha=text_scores.alpha, folds=text_scores.folds, random_state=seed,
        )  # fmt: skip
        parts.append(("text", scorer, text_scores.column))  # a scalar column: the step gets a 1-D series of texts

    categorical_steps = make_pipeline(
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
        StandardScaler(),
    )
    return ColumnTransformer(
        [("categorical", categorical_steps, categorical), ("numeric", StandardScaler(), numeric), *parts],
        remainder="drop",
        verbose_feature_names_out=False,
    )


