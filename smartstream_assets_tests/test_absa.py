"""The reviews domain's pure parts: targets from aspect annotations, text counts, the
SemEval reader, and the sentence-embedding cache in the lake."""

import json
import threading

import numpy as np
import pandas as pd
import pytest

from smartstream_assets.lake import LocalLake
from smartstream_assets.ml.absa import (
    OUTPUTS,
    AnnotationError,
    absa_targets,
    model_inputs,
    read_semeval,
    targets_frame,
    text_features,
)
from smartstream_assets.ml.embeddings import DIMENSIONS, EMBEDDING_COLUMNS, EmbeddingCache, EmbeddingError, embed_texts, text_hash

from .helpers import real_data


def aspects(kind, *pairs):
    return json.dumps([{kind: name, "polarity": polarity} for name, polarity in pairs])


def test_targets_follow_the_definitions():
    terms = aspects("term", ("pasta", "positive"), ("waiter", "negative"))
    categories = aspects("category", ("food", "positive"), ("service", "negative"), ("price", "conflict"))
    out = absa_targets(terms, categories)
    # (+1 -1 +1 -1 +0) / 5
    assert out["sentiment_score"] == pytest.approx(0.0)
    assert out["engagement_score"] == pytest.approx(5 / 6)
    assert out["implicitness_degree"] == pytest.approx((3 - 2) / 3)
    many = aspects("term", *[(f"t{i}", "positive") for i in range(7)])
    capped = absa_targets(many, "[]")
    assert capped == {"sentiment_score": 1.0, "engagement_score": 1.0, "implicitness_degree": 0.0}
    implicit = absa_targets("[]", aspects("category", ("service", "negative"), ("ambience", "neutral")))
    assert implicit["implicitness_degree"] == 1.0 and implicit["sentiment_score"] == pytest.approx(-0.5)


def test_a_review_without_aspects_has_no_targets():
    out = absa_targets("[]", "")
    assert all(np.isnan(v) for v in out.values())


@pytest.mark.parametrize(
    "terms, message",
    [
        ("{not json", "aspect_terms is not JSON"),
        ('{"term": "x"}', "must be a JSON list"),
        ('[{"term": "pasta", "polarity": "great"}]', "polarity 'great' is not one of"),
        ('[{"polarity": "positive"}]', "non-empty 'term'"),
    ],
)
def test_malformed_annotations_are_refused_with_the_reason(terms, message):
    with pytest.raises(AnnotationError, match=message):
        absa_targets(terms, "[]")


def test_targets_frame_keeps_good_rows_and_refuses_bad_ones():
    frame = pd.DataFrame(
        {
            "review_id": ["a", "b", "c"],
            "text": ["Great pasta.", "Broken.", "We came on a Tuesday."],
            "aspect_terms": [aspects("term", ("pasta", "positive")), "[{", "[]"],
            "aspect_categories": [aspects("category", ("food", "positive")), "[]", "[]"],
        }
    )
    good, refused = targets_frame(frame)
    assert good["review_id"].tolist() == ["a", "c"]
    assert good.loc[0, "sentiment_score"] == 1.0 and np.isnan(good.loc[1, "sentiment_score"])
    assert refused["review_id"].tolist() == ["b"] and "not JSON" in refused.loc[0, "reason"]
    assert set(OUTPUTS) <= set(good.columns) and not set(OUTPUTS) & set(refused.columns)


def test_text_features_count_clauses_and_negations():
    feats = text_features(["The pasta was not great, but the staff were lovely!", "Fine."])
    first = feats.iloc[0]
    assert first["n_negations"] == 1 and first["n_exclamations"] == 1
    assert first["n_clauses"] >= 3  # the comma and "but"
    assert first["n_words"] == 10 and feats.iloc[1]["n_words"] == 1


def test_semeval_xml_reads_terms_and_categories(tmp_path):
    xml = tmp_path / "s.xml"
    xml.write_text(
        '<sentences><sentence id="7"><text>Good food, rude staff.</text>'
        '<aspectTerms><aspectTerm term="food" polarity="positive" from="5" to="9"/>'
        '<aspectTerm term="staff" polarity="negative" from="16" to="21"/></aspectTerms>'
        '<aspectCategories><aspectCategory category="food" polarity="positive"/></aspectCategories>'
        '</sentence><sentence id="8"><text>No aspects.</text></sentence></sentences>'
    )
    frame = read_semeval(xml)
    assert frame["review_id"].tolist() == ["7", "8"]
    assert json.loads(frame.loc[0, "aspect_terms"])[1] == {"term": "staff", "polarity": "negative"}
    good, refused = targets_frame(frame)
    assert refused.empty and good.loc[0, "implicitness_degree"] == 0.0 and np.isnan(good.loc[1, "engagement_score"])


def test_the_real_semeval_restaurants_give_targets_for_every_sentence():
    frame = read_semeval(real_data("semeval2014/Restaurants_Train_v2.xml"))
    good, refused = targets_frame(frame)
    assert len(frame) == 3041 and refused.empty
    assert good["sentiment_score"].between(-1, 1).all() and good["engagement_score"].between(0, 1).all()
    # every restaurant sentence has a category, so every one has targets
    assert good[list(OUTPUTS)].notna().all(axis=None)


class CountingEncoder:
    """Stands in for the sentence encoder in cache tests: deterministic vectors, and it
    counts the texts it was asked to encode."""

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, texts, **_):
        self.seen += list(texts)
        return np.stack([np.random.default_rng(int(text_hash(t)[:8], 16)).normal(size=DIMENSIONS) for t in texts]).astype(np.float32)


def test_a_text_is_encoded_once_across_reruns(tmp_path):
    cache, encoder = EmbeddingCache(LocalLake(tmp_path)), CountingEncoder()
    texts = ["good food", "bad service", "good food", "ok"]
    first, stats = embed_texts(texts, cache=cache, encoder=encoder)
    assert stats.unique == 3 and stats.encoded == 3 and stats.cache_hits == 0
    assert sorted(encoder.seen) == ["bad service", "good food", "ok"]
    np.testing.assert_array_equal(first[0], first[2])
    again, stats = embed_texts(texts + ["new"], cache=EmbeddingCache(LocalLake(tmp_path)), encoder=encoder)
    assert stats.cache_hits == 3 and stats.encoded == 1 and encoder.seen[-1] == "new" and len(encoder.seen) == 4
    np.testing.assert_array_equal(again[:4], first)


def test_concurrent_runs_lose_no_vector(tmp_path):
    lake = LocalLake(tmp_path)
    batches = [[f"review {i} {j}" for j in range(40)] for i in range(4)]
    errors = []

    def run(texts):
        try:
            embed_texts(texts, cache=EmbeddingCache(lake), encoder=CountingEncoder())
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    encoder = CountingEncoder()
    _, stats = embed_texts([t for b in batches for t in b], cache=EmbeddingCache(lake), encoder=encoder)
    assert stats.cache_hits == 160 and encoder.seen == []


def test_an_unreadable_cache_shard_fails_with_its_key(tmp_path):
    lake = LocalLake(tmp_path)
    cache = EmbeddingCache(lake)
    lake.write_bytes(cache.shard_key(text_hash("x")[:2]), b"not parquet")
    with pytest.raises(EmbeddingError, match=r"shard=.*unreadable"):
        embed_texts(["x"], cache=cache, encoder=CountingEncoder())


def test_model_inputs_are_the_embedding_and_the_counts():
    vectors = np.ones((2, DIMENSIONS), dtype=np.float32)
    frame = model_inputs(["a b", "c"], vectors)
    assert list(frame.columns[:DIMENSIONS]) == list(EMBEDDING_COLUMNS)
    assert frame["n_words"].tolist() == [2.0, 1.0]


@pytest.mark.slow
def test_the_offline_encoder_gives_unit_vectors_that_know_meaning():
    vectors, stats = embed_texts(["The food was delicious.", "The meal was tasty.", "The laptop battery died."])
    assert vectors.shape == (3, DIMENSIONS) and stats.encoded == 3
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
