"""PCA for the pipelines' embedding columns (its own module: sklearn is imported when a
pipeline is built, not with ``ml.features``)."""

from __future__ import annotations

from sklearn.decomposition import PCA


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
