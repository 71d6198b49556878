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
