"""Estimators sklearn does not have, kept to what a task needs.

``AnchoredRegressor`` predicts the change from an anchor column (the latest reading)
and adds the anchor back, so the fitted model answers levels. Tree ensembles cannot
extrapolate: trained on a rising series (CO2 at Mauna Loa), a forest or XGBoost on the
raw level never predicts above the highest level it saw (measured on the real weekly
series: its RMSE on the last 104 weeks is 2.6x persistence's), while the same models
on the weekly change beat persistence by 25-30%. sklearn's
``TransformedTargetRegressor`` cannot do this: its inverse transform sees the
prediction, not the row's anchor.

It wraps the whole preprocessing + model Pipeline (the anchor must reach it
unscaled), and travels in MLflow like any sklearn model: skops lists it among the
types to trust at logging; loading needs ``smartstream_assets`` importable (it is, in
the project's venv and with ``make serve``'s ``--env-manager local``).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone


# RegressorMixin first: with BaseEstimator first, sklearn 1.9's is_regressor() says False
class AnchoredRegressor(RegressorMixin, BaseEstimator):
    """``regressor`` learns ``y - X[anchor]``; ``predict`` returns ``X[anchor] + change``."""

    def __init__(self, regressor=None, anchor: str = ""):
        self.regressor = regressor
        self.anchor = anchor

    def _anchor_values(self, X) -> np.ndarray:
        if not hasattr(X, "columns") or self.anchor not in X.columns:
            raise ValueError(f"AnchoredRegressor needs the anchor column {self.anchor!r} in its input frame")
        return X[self.anchor].to_numpy(dtype=np.float64)

    def fit(self, X, y):
        base = self._anchor_values(X)
        if np.isnan(base).any():
            raise ValueError(f"{int(np.isnan(base).sum())} rows have no {self.anchor}: the change cannot be learnt from them")
        self.regressor_ = clone(self.regressor).fit(X, np.asarray(y, dtype=np.float64) - base)
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def predict(self, X):
        return self._anchor_values(X) + np.asarray(self.regressor_.predict(X), dtype=np.float64)
