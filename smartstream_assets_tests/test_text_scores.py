"""Cross-fitted TF-IDF + ridge scores of a text column (``ml.text_scores``,
``tasks.TextScores``): no leak of a training row's own label, copies of a text kept in
one fold, the polarity learned, tiny folds survive, and the step inside a task's
pipeline (names, skops round trip)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score

from smartstream_assets.ml.tasks import Embeddings, MultiOutputRegression, TextScores
from smartstream_assets.ml.text_scores import CrossFittedTextScores

WORDS = [f"w{i}" for i in range(3000)]


def _noise_texts(n: int, seed: int) -> list[str]:
    """Texts made of words no other text uses: nothing generalises from one to another."""
    rng = np.random.default_rng(seed)
    words = rng.permutation(WORDS)[: 3 * n].reshape(n, 3)
    return [" ".join(row) for row in words]


def test_training_rows_get_scores_from_a_ridge_that_never_saw_them():
    texts = _noise_texts(400, 0)
    y = np.random.default_rng(1).normal(size=400)
    step = CrossFittedTextScores(outputs=("y",), min_df=1, alpha=0.1)
    crossed = step.fit_transform(pd.Series(texts), y)[:, 0]
    in_sample = step.transform(pd.Series(texts))[:, 0]
    # the full ridge memorises each unique text; the cross-fitted one cannot know its label
    assert r2_score(y, in_sample) > 0.8
    assert r2_score(y, crossed) < 0.05


def test_copies_of_a_text_are_cross_fitted_together():
    texts = _noise_texts(300, 2)
    y = np.random.default_rng(3).normal(size=300)
    doubled, y2 = texts + texts, np.concatenate([y, y])
    crossed = CrossFittedTextScores(outputs=("y",), min_df=1, alpha=0.1).fit_transform(np.array(doubled, dtype=object), y2)[:, 0]
    # a copy in another fold would hand each row its own label (R² near 1)
    assert r2_score(y2, crossed) < 0.05


def test_the_polarity_of_words_is_learned_per_output():
    rng = np.random.default_rng(4)
    good, bad = ["great food", "lovely staff", "great view"], ["rude staff", "cold food", "awful view"]
    rows, labels = [], []
    for _ in range(200):
        positive = rng.random() < 0.5
        phrase = rng.choice(good if positive else bad)
        rows.append(f"the {phrase} here")
        labels.append([1.0 if positive else -1.0, len(phrase) / 20])
    step = CrossFittedTextScores(outputs=("sentiment", "length")).fit(pd.Series(rows), np.array(labels))
    scores = step.transform(pd.Series(["great food tonight", "rude waiter, cold soup"]))
    assert scores.shape == (2, 2)
    assert scores[0, 0] > 0.5 and scores[1, 0] < -0.5
    assert list(step.get_feature_names_out()) == ["text_sentiment", "text_length"]


def test_a_handful_of_texts_and_missing_ones_do_not_fail():
    texts = pd.Series(["good", None, "bad"], dtype=object)
    out = CrossFittedTextScores(outputs=("y",)).fit_transform(texts, np.array([1.0, 0.0, -1.0]))
    assert out.shape == (3, 1) and np.isfinite(out).all()
    one = CrossFittedTextScores(outputs=("y",)).fit_transform(pd.Series(["same", "same"]), np.array([1.0, 1.0]))
    assert np.isfinite(one).all()


def test_y_is_required_and_settings_are_checked():
    with pytest.raises(ValueError, match="y is required"):
        CrossFittedTextScores().fit_transform(pd.Series(["a", "b"]), None)
    for bad in ({"column": ""}, {"column": "text", "folds": 1}, {"column": "text", "alpha": 0.0}):
        with pytest.raises(ValueError, match="TextScores needs"):
            TextScores(**bad)


def test_a_task_pipeline_reads_the_text_column_and_survives_skops(tmp_path):
    import skops.io

    from smartstream_assets.ml.training import feature_importance, make_pipeline

    rng = np.random.default_rng(5)
    n = 240
    positive = rng.random(n) < 0.5
    frame = pd.DataFrame({
        "text": np.where(positive, "a great and lovely meal", "a rude and awful meal"),
        "e0": rng.normal(size=n), "e1": rng.normal(size=n), "n_words": rng.integers(3, 9, n).astype(float),
    })  # fmt: skip
    frame["text"] = frame["text"] + " " + pd.Series(rng.choice(WORDS[:50], n))
    y = np.column_stack([np.where(positive, 1.0, -1.0), frame["n_words"] / 10])
    task = MultiOutputRegression(outputs=("sentiment", "engagement"), objective="r2",
                                 embeddings=Embeddings(("e0", "e1"), components=2), text_scores=TextScores("text"))  # fmt: skip
    assert task.text_columns == ["text"]
    columns = ["e0", "e1", "n_words", "text"]
    params = {"n_estimators": 30, "max_depth": 2, "learning_rate": 0.3, "subsample": 1.0, "colsample_bytree": 1.0, "min_child_weight": 1.0}
    pipeline = make_pipeline("xgboost", params, ["e0", "e1", "n_words"], [], 0, 1, task=task).fit(frame[columns], y)
    names = set(feature_importance(pipeline))
    assert {"text_sentiment", "text_engagement", "n_words"} <= names
    predicted = task.predict(pipeline, frame[columns])
    assert r2_score(y[:, 0], predicted[:, 0]) > 0.9  # the polarity comes through the text scores alone

    path = tmp_path / "model.skops"
    skops.io.dump(pipeline, path)
    loaded = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    np.testing.assert_allclose(task.predict(loaded, frame[columns]), predicted)


def test_a_domain_refuses_a_text_column_that_is_also_numeric():
    from smartstream_assets.domains import Domain

    task = MultiOutputRegression(outputs=("a", "b"), objective="r2", text_scores=TextScores("text"))
    with pytest.raises(ValueError, match="text column text is also a numeric or categorical feature"):
        Domain(name="t", table="t", model="m", registered_model="r", id_column="id", task=task, numeric=("text",), categorical=())
    domain = Domain(name="t", table="t", model="m", registered_model="r", id_column="id", task=task, numeric=("x",), categorical=())
    assert domain.features == ["x", "text"]
