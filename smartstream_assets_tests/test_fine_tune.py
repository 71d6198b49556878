"""Fine-tuning the sentence encoder with a regression head (``ml.fine_tune``): it learns
the targets, on a copy (the process's encoder is untouched), and what it saves loads
offline as an encoder."""

import numpy as np
import pytest

from smartstream_assets.ml.embeddings import encode, load_encoder
from smartstream_assets.ml.fine_tune import fine_tune_encoder

pytestmark = pytest.mark.slow

GOOD = ["the soup was wonderful", "a lovely waiter", "great pasta tonight", "the desserts were superb", "friendly and warm staff", "excellent wine list"]
BAD = ["the soup was dreadful", "a rude waiter", "awful pasta tonight", "the desserts were stale", "cold and careless staff", "terrible wine list"]


def test_fine_tuning_learns_the_targets_on_a_copy_of_the_encoder(tmp_path):
    base = encode(["a lovely waiter"], encoder=load_encoder())
    texts = (GOOD + BAD) * 3
    y = np.array([[1.0, 0.5]] * len(GOOD) + [[-1.0, 0.5]] * len(BAD)).tolist() * 3
    tuned = fine_tune_encoder(texts, y, epochs=3, batch_size=8, head_lr=1e-2, seed=1)
    assert len(tuned.losses) == 3 and tuned.losses[-1] < tuned.losses[0]
    scores = tuned.predict(["wonderful friendly staff", "dreadful careless staff"])
    assert scores.shape == (2, 2) and scores[0, 0] > 0.3 and scores[1, 0] < -0.3
    # the process's encoder is untouched
    np.testing.assert_array_equal(encode(["a lovely waiter"], encoder=load_encoder()), base)
    # saved, it loads offline like the packaged one, and embeds as the tuned copy does
    tuned.encoder.save(str(tmp_path / "tuned"))
    np.testing.assert_allclose(encode(["a lovely waiter"], encoder=load_encoder(str(tmp_path / "tuned"))), tuned.embed(["a lovely waiter"]), atol=1e-5)


def test_bad_inputs_are_refused_before_any_training():
    with pytest.raises(ValueError, match="one target row per text"):
        fine_tune_encoder(["a", "b"], [1.0])
    with pytest.raises(ValueError, match="must be finite"):
        fine_tune_encoder(["a", "b"], [1.0, float("nan")])
    with pytest.raises(ValueError, match="epochs and batch_size"):
        fine_tune_encoder(["a"], [1.0], epochs=0)


# --- the tuned encoder as a pipeline step (tasks.FineTune -> ml.fine_tune.TunedEncoder)


def _frame(texts, columns=("emb_000", "emb_001")):
    import pandas as pd

    return pd.DataFrame({"text": texts, "n_words": [len(t.split()) for t in texts], **{c: 0.0 for c in columns}})


def test_the_step_replaces_the_embedding_with_the_tuned_vectors_and_is_fitted_once_before_the_search():
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    from smartstream_assets.ml.embeddings import EMBEDDING_COLUMNS
    from smartstream_assets.ml.fine_tune import TunedEncoder, tuned_steps

    texts = GOOD + BAD
    y = np.array([1.0] * len(GOOD) + [-1.0] * len(BAD))
    step = TunedEncoder(columns=EMBEDDING_COLUMNS, epochs=1, max_rows=8, batch_size=4, seed=3).fit(_frame(texts), y)
    assert step.rows_ == 8 and len(step.losses_) == 1 and step.seconds_ > 0  # a seeded sample of max_rows
    out = step.transform(_frame(texts[:3]))
    assert list(out.columns[:2]) == ["text", "n_words"] and list(out.columns[2:]) == list(EMBEDDING_COLUMNS)
    np.testing.assert_allclose(out[list(EMBEDDING_COLUMNS)].to_numpy(), step.encoder.encode(texts[:3]), atol=1e-5)
    # a frame without the columns gets them (the served model needs no base vectors)
    bare = step.transform(pd.DataFrame({"text": texts[:3]}))
    np.testing.assert_allclose(bare[list(EMBEDDING_COLUMNS)].to_numpy(), out[list(EMBEDDING_COLUMNS)].to_numpy())
    with pytest.raises(ValueError, match="'text'"):
        step.transform(pd.DataFrame({"body": ["x"]}))

    # frozen, refitting the pipeline (each trial and fold of the search) leaves the encoder as it is
    before = step.transform(_frame(texts))[list(EMBEDDING_COLUMNS)].to_numpy()
    columns = list(EMBEDDING_COLUMNS)
    pipeline = Pipeline([("encoder", FrozenEstimator(step)), ("pick", ColumnTransformer([("e", "passthrough", columns)])), ("model", Ridge())])
    pipeline.fit(_frame(texts), y)
    pipeline.fit(_frame(texts[::-1]), y[::-1])
    np.testing.assert_array_equal(step.transform(_frame(texts))[columns].to_numpy(), before)
    assert tuned_steps(pipeline) == [step]
    assert pipeline.predict(_frame(["superb pasta"]))[0] > pipeline.predict(_frame(["stale pasta"]))[0]


def test_the_encoder_is_left_out_of_the_pickled_step_and_attached_on_load(tmp_path):
    import pickle

    import skops.io

    from smartstream_assets.ml.embeddings import EMBEDDING_COLUMNS
    from smartstream_assets.ml.fine_tune import TunedEncoder
    from smartstream_assets.ml.text_model import attach_encoders

    texts = GOOD + BAD
    step = TunedEncoder(columns=EMBEDDING_COLUMNS, epochs=1, batch_size=4).fit(_frame(texts), [1.0] * 6 + [-1.0] * 6)
    expected = step.transform(_frame(texts))
    blob = skops.io.dumps(step)
    assert len(blob) < 100_000  # 90 MB of weights are not in it
    loaded = skops.io.loads(blob, trusted=skops.io.get_untrusted_types(data=blob))
    assert pickle.loads(pickle.dumps(step)).__dict__.get("encoder_") is None
    with pytest.raises(RuntimeError, match="not attached"):
        loaded.transform(_frame(texts))
    step.encoder.save(str(tmp_path / "encoder"))
    from sklearn.pipeline import Pipeline

    assert attach_encoders(Pipeline([("encoder", loaded)]), str(tmp_path / "encoder")) == 1
    np.testing.assert_allclose(loaded.transform(_frame(texts))[list(EMBEDDING_COLUMNS)].to_numpy(), expected[list(EMBEDDING_COLUMNS)].to_numpy(), atol=1e-5)


def test_train_model_fine_tunes_on_the_fit_rows_only_once():
    import dataclasses

    import pandas as pd

    from smartstream_assets.domains.reviews import REVIEWS
    from smartstream_assets.ml.absa import model_inputs
    from smartstream_assets.ml.embeddings import embed_texts
    from smartstream_assets.ml.fine_tune import tuned_steps
    from smartstream_assets.ml.training import SearchSettings, train_model

    rng = np.random.default_rng(0)
    texts, sentiment = [], []
    for i in range(120):
        good = rng.random() < 0.5
        texts.append(f"{rng.choice(GOOD if good else BAD)} on visit {i}")
        sentiment.append(1.0 if good else -1.0)
    vectors, _ = embed_texts(texts)
    frame = pd.DataFrame({"review_id": [f"r{i:03d}" for i in range(120)], "text": texts}).join(model_inputs(texts, vectors))
    frame["sentiment_score"] = sentiment
    frame["engagement_score"] = rng.random(120)
    frame["implicitness_degree"] = rng.random(120)
    task = REVIEWS.task.with_fine_tune(epochs=1, max_rows=60)
    candidate = train_model(
        frame, task=task, id_column="review_id", numeric=list(REVIEWS.numeric), categorical=[],
        settings=SearchSettings(trials=2, estimators=("xgboost",)), keep_columns=("text",),
    )  # fmt: skip
    assert candidate.representation["fine_tuned"] and candidate.representation["rows"] == 60
    (step,) = tuned_steps(candidate.pipeline)
    fit_rows = set(candidate.train["text"])
    assert set(step._memo) >= fit_rows  # encoded for the search and the fit
    assert candidate.metrics["r2_sentiment_score"] > 0.5
    # the holdout keeps the base encoder's vectors (what drift compares hourly); the model reads the tuned ones
    base = frame.set_index("review_id").loc[candidate.holdout["review_id"], "emb_000"].to_numpy()
    np.testing.assert_allclose(candidate.holdout["emb_000"].to_numpy(), base)
    # a frozen encoder on request; a task without one cannot be given epochs
    assert REVIEWS.task.with_fine_tune(epochs=0).fine_tune is None
    assert dataclasses.replace(REVIEWS.task).fine_tune.epochs == 2
    from smartstream_assets.domains.employees import ATTRITION

    with pytest.raises(ValueError, match="fine-tunes no encoder"):
        ATTRITION.task.with_fine_tune(epochs=1)
