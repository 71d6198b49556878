"""The preprocessing that lives inside every fitted pipeline, so training and scoring
cannot skew: the same encoders and scalers, fitted once, travel with the model."""

from __future__ import annotations


def build_preprocessor(numeric: list[str], categorical: list[str]):
    """Categories as ordinal codes, then everything standard-scaled.

    The prototype label-encoded the categorical columns and standard-scaled them
    (LabelEncoder + StandardScaler); OrdinalEncoder is LabelEncoder for features.
    A category never seen in training becomes -1 at scoring instead of failing.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder, StandardScaler

    categorical_steps = make_pipeline(
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
        StandardScaler(),
    )
    return ColumnTransformer(
        [("categorical", categorical_steps, categorical), ("numeric", StandardScaler(), numeric)],
        remainder="drop",
        verbose_feature_names_out=False,
    )
