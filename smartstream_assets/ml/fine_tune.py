"""Fine-tune the sentence encoder on labelled texts (a regression head of the targets).

all-MiniLM-L6-v2 places texts by topic more than by polarity: frozen, its vectors cap
the reviews model's sentiment R² at 0.38-0.46 on SemEval restaurants (three holdouts);
trained for two epochs together with a linear head of the three targets, on the same
training rows, 0.49-0.57 (``benchmarks/reviews_quality.py``). This module is that training
step, pure (no Dagster, no MLflow): a fresh copy of the base encoder (the process's
cached one is never touched), AdamW (encoder and head at their own rates), mean squared
error, seeded batches.

``TunedEncoder`` makes it a step of the model's pipeline (``tasks.FineTune``): fitted
ONCE per candidate, on the rows the final model is fitted on, before the search
(``train_model`` freezes it with sklearn's ``FrozenEstimator``: fine-tuning per trial
and fold would cost the search ~12 fine-tunings). Its ``transform`` replaces the
embedding columns with the tuned encoder's vectors of the text column, so every caller
of the pipeline (the gate on the holdout, batch scoring, the served pyfunc) scores with
the encoder the model was trained with. The encoder is not part of the pickled state:
the text model ships it as an artifact and attaches it on load (``ml.text_model``).

Why a hand-written loop: sentence-transformers' trainer (``SentenceTransformerTrainer``)
drives losses over pairs or triplets of texts, or one label per text
(``CoSENTLoss``, ``MSELoss`` against teacher vectors); a multi-output regression head
on the sentence embedding is a dozen lines of torch, and its data are in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


@dataclass
class FineTuned:
    encoder: object  # a SentenceTransformer, trained, in eval mode
    head: object  # torch.nn.Linear(embedding dimension, number of targets)
    losses: list[float]  # mean training loss per epoch

    def embed(self, texts, batch_size: int = 64) -> np.ndarray:
        return self.encoder.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)

    def predict(self, texts) -> np.ndarray:
        """The head's predictions of the targets, one row per text."""
        import torch

        with torch.no_grad():
            return self.head(torch.tensor(self.embed(texts))).numpy().astype(np.float64)


def fine_tune_encoder(
    texts,
    targets,
    *,
    epochs: int = 2,
    batch_size: int = 16,
    encoder_lr: float = 3e-5,
    head_lr: float = 1e-3,
    seed: int = 0,
    base: str | None = None,
) -> FineTuned:
    """Train a fresh copy of the encoder at ``base`` (default: the package's
    all-MiniLM-L6-v2) and a linear head on ``targets`` (n x k, or n) for ``epochs``.
    Raises ``ValueError`` on mismatched or empty inputs, or a non-finite target."""
    import torch
    from sentence_transformers import SentenceTransformer

    from .embeddings import encoder_path

    texts = [str(t) for t in texts]
    y = np.asarray(targets, dtype=np.float32)
    y = y.reshape(len(y), -1) if y.ndim == 1 else y
    if not texts or len(texts) != len(y):
        raise ValueError(f"fine-tuning needs one target row per text (got {len(texts)} texts, {len(y)} target rows)")
    if not np.isfinite(y).all():
        raise ValueError(f"fine-tuning targets must be finite ({int((~np.isfinite(y)).any(axis=1).sum())} rows are not)")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1 (got {epochs}, {batch_size})")
    torch.manual_seed(seed)
    encoder = SentenceTransformer(str(base or encoder_path()), device="cpu", local_files_only=True)
    dimension = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension  # renamed in 6.x
    head = torch.nn.Linear(dimension(), y.shape[1])
    optimiser = torch.optim.AdamW([{"params": encoder.parameters(), "lr": encoder_lr}, {"params": head.parameters(), "lr": head_lr}])
    tokenize = getattr(encoder, "preprocess", None) or encoder.tokenize  # preprocess: sentence-transformers >= 5
    labels = torch.tensor(y)
    losses = []
    encoder.train()
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(texts))
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            predicted = head(encoder(tokenize([texts[i] for i in batch]))["sentence_embedding"])
            loss = torch.nn.functional.mse_loss(predicted, labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.item()) * len(batch)
        losses.append(total / len(texts))
    encoder.eval()
    head.eval()
    return FineTuned(encoder=encoder, head=head, losses=losses)


# vectors kept per process and text: the search fits and scores the same texts a dozen times
_MEMO_LIMIT = 50_000


class TunedEncoder(TransformerMixin, BaseEstimator):
    """A pipeline step: the embedding ``columns`` := the fine-tuned encoder's vectors of
    ``text_column`` (added when the frame lacks them). ``fit`` fine-tunes a fresh copy of
    the base encoder on (texts, targets): at most ``max_rows`` rows (a seeded sample),
    ``epochs`` epochs."""

    def __init__(self, text_column: str = "text", columns=(), epochs: int = 2, max_rows: int | None = None,
                 batch_size: int = 16, encoder_lr: float = 3e-5, head_lr: float = 1e-3, seed: int = 0):  # fmt: skip
        self.text_column = text_column
        self.columns = columns
        self.epochs = epochs
        self.max_rows = max_rows
        self.batch_size = batch_size
        self.encoder_lr = encoder_lr
        self.head_lr = head_lr
        self.seed = seed

    def fit(self, X, y):
        import time

        import pandas as pd

        if not isinstance(X, pd.DataFrame) or self.text_column not in X.columns:
            raise ValueError(f"the tuned encoder reads the column {self.text_column!r} of a data frame")
        texts = X[self.text_column].fillna("").astype(str).to_numpy()
        y = np.asarray(y, dtype=np.float64)
        rows = np.arange(len(texts))
        if self.max_rows is not None and len(rows) > self.max_rows:
            rows = np.sort(np.random.default_rng(self.seed).choice(len(rows), size=self.max_rows, replace=False))
        started = time.perf_counter()
        tuned = fine_tune_encoder(
            texts[rows], y[rows], epochs=self.epochs, batch_size=self.batch_size, encoder_lr=self.encoder_lr,
            head_lr=self.head_lr, seed=self.seed,
        )  # fmt: skip
        self.encoder_ = tuned.encoder
        self.losses_ = [float(v) for v in tuned.losses]
        self.rows_ = int(len(rows))
        self.seconds_ = float(time.perf_counter() - started)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(X.columns)
        self._memo = {}
        return self

    # --- the encoder travels beside the pickled step (an MLflow artifact), never inside it
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns the live __dict__
        state.pop("encoder_", None)
        state.pop("_memo", None)
        return state

    def attach(self, encoder) -> None:
        """Give a loaded step its encoder (``ml.text_model`` does on load)."""
        self.encoder_ = encoder
        self._memo = {}

    @property
    def encoder(self):
        encoder = getattr(self, "encoder_", None)
        if encoder is None:
            raise RuntimeError(
                "the tuned encoder is not attached to this pipeline: load the model as its MLflow pyfunc "
                "(it ships the encoder) or through the registry"
            )
        return encoder

    def embed(self, texts) -> np.ndarray:
        """The tuned vectors of ``texts`` (n x dimensions, float32); a text already seen by
        this process is not encoded again."""
        from .embeddings import encode

        memo = self.__dict__.setdefault("_memo", {})
        texts = ["" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t) for t in texts]
        missing = list(dict.fromkeys(t for t in texts if t not in memo))
        if missing:
            if len(memo) + len(missing) > _MEMO_LIMIT:
                memo.clear()
            memo.update(zip(missing, encode(missing, encoder=self.encoder)))
        if not texts:
            return np.zeros((0, len(self.columns)), dtype=np.float32)
        return np.stack([memo[t] for t in texts]).astype(np.float32)

    def transform(self, X):
        import pandas as pd

        if self.text_column not in X.columns:
            raise ValueError(f"the tuned encoder reads the column {self.text_column!r}, which the frame lacks")
        vectors = pd.DataFrame(self.embed(X[self.text_column].tolist()), columns=list(self.columns), index=X.index)
        return pd.concat([X.drop(columns=[c for c in self.columns if c in X.columns]), vectors], axis=1)

    def get_feature_names_out(self, input_features=None):
        names = [c for c in getattr(self, "feature_names_in_", []) if c not in set(self.columns)]
        return np.asarray([*names, *self.columns], dtype=object)


def tuned_steps(pipeline) -> list[TunedEncoder]:
    """The tuned encoders of a fitted pipeline (frozen or not, wrapped or not)."""
    found = []
    pipeline = getattr(pipeline, "regressor_", pipeline)  # an AnchoredRegressor wraps the Pipeline
    for _, step in getattr(pipeline, "steps", []):
        step = getattr(step, "estimator", step)  # FrozenEstimator
        if isinstance(step, TunedEncoder):
            found.append(step)
    return found
