"""Fine-tune the sentence encoder on labelled texts (a regression head of the targets).

all-MiniLM-L6-v2 places texts by topic more than by polarity: frozen, its vectors cap
the reviews model's sentiment R² near 0.38-0.46 on SemEval restaurants; trained for
two epochs together with a linear head of the three targets, on the same training
rows, 0.49-0.54 (``benchmarks/reviews_quality.py --fine-tune 2``). This module is that
training step, pure (no Dagster, no MLflow): a fresh copy of the base encoder (the
process's cached one is never touched), AdamW (encoder and head at their own rates),
mean squared error, seeded batches. Not wired into the reviews domain yet: that needs an
encoder per model version (see the README, "Reviews figures").

Why a hand-written loop: sentence-transformers' trainer (``SentenceTransformerTrainer``)
drives losses over pairs or triplets of texts, or one label per text
(``CoSENTLoss``, ``MSELoss`` against teacher vectors); a multi-output regression head
on the sentence embedding is a dozen lines of torch, and its data are in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
