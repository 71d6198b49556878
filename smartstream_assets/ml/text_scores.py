"""Lexical scores of a text column, as a pipeline step (``tasks.TextScores``).

TF-IDF word n-grams and one ridge regression of the task's targets: the ridge's
predictions become the model's input columns (``text_<target>``). Sentence embeddings
summarise a text's topic well and its polarity poorly; the words ("great", "rude",
"not") carry the polarity, and a linear model on them learns it from the training rows
alone (no lexicon to download). The tree model then combines both.

Cross-fitted, as sklearn's ``TargetEncoder`` does for categories (and the same reason):
a ridge scored on the rows it was fitted on would feed the tree model near-perfect
scores there and ordinary ones at scoring time. ``fit_transform`` (what a Pipeline calls
while fitting) therefore returns, for each training row, the prediction of a ridge fitted
on the other folds; the folds keep every copy of a text on one side. ``transform``
(scoring) uses the ridge fitted on all the training rows. sklearn has no cross-fitted
transformer for an arbitrary model (``StackingRegressor`` cross-fits, but is the whole
model and takes one output), hence this small class.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class CrossFittedTextScores(TransformerMixin, BaseEstimator):
    """``outputs``: the names of the targets (the output columns are ``text_<output>``)."""

    def __init__(self, outputs=(), ngram_max: int = 2, min_df: int = 2, alpha: float = 1.0, folds: int = 5, random_state: int = 0):
        self.outputs = outputs
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.alpha = alpha
        self.folds = folds
        self.random_state = random_state

    def _model(self):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline

        # min_df as a count falls back to 1 on a fold too small for it (a tiny training fold must not fail)
        return make_pipeline(
            TfidfVectorizer(ngram_range=(1, self.ngram_max), min_df=self.min_df, sublinear_tf=True),
            Ridge(alpha=self.alpha),
        )

    @staticmethod
    def _texts(X) -> np.ndarray:
        values = np.asarray(X, dtype=object)
        if values.ndim == 2:
            if values.shape[1] != 1:
                raise ValueError(f"text scores read one text column (got {values.shape[1]})")
            values = values[:, 0]
        return np.array(["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values], dtype=object)

    def _fit_one(self, texts, y):
        model = self._model()
        try:
            return model.fit(texts, y)
        except ValueError:  # "After pruning, no terms remain": too few texts for min_df
            model.set_params(tfidfvectorizer__min_df=1)
            return model.fit(texts, y)

    def fit(self, X, y):
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X, y):
        from sklearn.model_selection import GroupKFold

        if y is None:
            raise ValueError("text scores are fitted on the targets: y is required")
        texts = self._texts(X)
        y = np.asarray(y, dtype=np.float64)
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        self.model_ = self._fit_one(texts, y)
        groups = np.unique(texts, return_inverse=True)[1]
        folds = min(self.folds, np.unique(groups).size)
        out = np.empty((len(texts), self.n_outputs_), dtype=np.float64)
        if folds < 2:  # one distinct text: nothing to cross-fit on
            out[:] = self.model_.predict(texts).reshape(len(texts), -1)
            return out
        splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
        for fit_idx, val_idx in splitter.split(texts, groups=groups):
            out[val_idx] = self._fit_one(texts[fit_idx], y[fit_idx]).predict(texts[val_idx]).reshape(len(val_idx), -1)
        return out

    def transform(self, X):
        texts = self._texts(X)
        return self.model_.predict(texts).reshape(len(texts), -1)

    def get_feature_names_out(self, input_features=None):
        names = list(self.outputs) if len(self.outputs) == getattr(self, "n_outputs_", len(self.outputs)) else [str(i) for i in range(self.n_outputs_)]
        return np.array([f"text_{n}" for n in names], dtype=object)
