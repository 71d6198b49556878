"""The preprocessing that lives inside every fitted pipeline, so training and scoring
cannot skew: the same encoders and scalers, fitted once, travel with the model."""

from __future__ import annotations

from sklearn.decomposition import PCA


def build_preprocessor(numeric: list[str], categorical: list[str], embeddings=None, seed: int = 42):
    """Categories as ordinal codes, then everything standard-scaled.

    The prototype label-encoded the categorical columns and standard-scaled them
    (LabelEncoder + StandardScaler); OrdinalEncoder is LabelEncoder for features.
    A category never seen in training becomes -1 at scoring instead of failing.

    ``embeddings`` (``tasks.Embeddings``): those numeric columns are one vector, projected
    on its first principal components (``pca0`` ..) instead of being scaled one by one.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder, StandardScaler

    parts = []
    if embeddings is not None:
        vector = [c for c in numeric if c in set(embeddings.columns)]
        numeric = [c for c in numeric if c not in set(embeddings.columns)]
        parts.append(("embedding", CappedPCA(n_components=embeddings.components, random_state=seed), vector))

    categorical_steps = make_pipeline(
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1),
        StandardScaler(),
    )
    return ColumnTransformer(
        [("categorical", categorical_steps, categorical), ("numeric", StandardScaler(), numeric), *parts],
        remainder="drop",
        verbose_feature_names_out=False,
    )



class CappedPCA(PCA):
    """PCA that keeps at most as many components as the fitted data allows (rows,
    columns): a small training fold must not fail where the full data would not.
    sklearn's PCA raises instead; the parameter is left as given (``clone`` safe)."""

    def _capped(self, X, fit):
        wanted = self.n_components
        if isinstance(wanted, int):
            self.n_components = max(1, min(wanted, X.shape[0], X.shape[1]))
        try:
            return fit(X)
        finally:
            self.n_components = wanted

    def fit(self, X, y=None):
        self._capped(X, super().fit)
        return self

    def fit_transform(self, X, y=None):
        return self._capped(X, super().fit_transform)
