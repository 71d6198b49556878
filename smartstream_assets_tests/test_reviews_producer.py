"""The reviews sample (tables ``reviews`` and ``reviews_labelled``) and ``smartstream
produce reviews``: seeded, parseable by the csv reader without quarantine, SemEval-style
labels, hourly keys, and a producer that continues the lake's newest hour."""

import csv
import io
import json
import re
from collections import Counter
from datetime import datetime, timezone

import pytest

from smartstream_assets.cdc.formats import read_records
from smartstream_assets.cli import main
from smartstream_assets.lake import LocalLake
from smartstream_assets.producers import PRODUCERS, SAMPLE_SEED, sample_objects
from smartstream_assets.producers.reviews import (
    _TERMS,
    CATEGORIES,
    POLARITIES,
    LabelledReviewsProducer,
    ReviewsDrift,
    ReviewsProducer,
    generate_reviews,
    hourly_object,
    labelled_frame,
)
from smartstream_assets.tables import load_tables

TABLES = load_tables(extra="")
HOURLY, LABELLED = TABLES["reviews"], TABLES["reviews_labelled"]
SAMPLE = {key: data for key, data in sample_objects(TABLES) if key.startswith("raw/reviews/")}
HOURLY_SAMPLE = {k: v for k, v in SAMPLE.items() if k.startswith(HOURLY.raw_prefix)}
LABELLED_SAMPLE = {k: v for k, v in SAMPLE.items() if k.startswith(LABELLED.raw_prefix)}

LAPTOP_WORDS = {t.term.lower() for c in _TERMS["laptops"].values() for t in c[1]} | {"laptop", "notebook"}
RESTAURANT_WORDS = {"pasta", "steak", "pizza", "waiter", "waitress", "terrace", "decor", "bill", "menu", "courier", "packaging", "food", "staff"}


def rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def mentions(text: str, words) -> bool:
    return any(re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE) for w in words)


def labelled_rows() -> list[dict]:
    return [r for data in LABELLED_SAMPLE.values() for r in rows(data)]


def test_both_tables_have_a_producer_and_the_sample_has_the_declared_shape():
    assert PRODUCERS["reviews"] is ReviewsProducer and PRODUCERS["reviews_labelled"] is LabelledReviewsProducer
    assert sorted(k[len(LABELLED.raw_prefix) :] for k in LABELLED_SAMPLE) == [
        f"2026/11/{20 + i}/labelled-{i + 1:03d}.csv" for i in range(4)
    ]
    assert sorted(k[len(HOURLY.raw_prefix) :] for k in HOURLY_SAMPLE) == [
        f"2026/11/24/{h:02d}/reviews-2026-11-24T{h:02d}.csv" for h in range(24)
    ]
    assert sum(len(v) for v in SAMPLE.values()) < 1.5e6


def test_the_generator_is_deterministic_per_seed():
    first = [o.data for o in ReviewsProducer(HOURLY, seed=5).history()]
    again = [o.data for o in ReviewsProducer(HOURLY, seed=5).history()]
    other = [o.data for o in ReviewsProducer(HOURLY, seed=6).history()]
    assert first == again and first != other
    frame = lambda seed: generate_reviews(300, seed=seed, start="2026-11-20", end="2026-11-21")  # noqa: E731
    assert frame(5).equals(frame(5)) and not frame(5)["text"].equals(frame(6)["text"])


def test_headers_are_exactly_the_declared_columns():
    for tables, spec in ((HOURLY_SAMPLE, HOURLY), (LABELLED_SAMPLE, LABELLED)):
        for key, data in tables.items():
            assert data.split(b"\n", 1)[0].decode() == ",".join(spec.columns), key
    assert list(HOURLY.columns) == ["review_id", "created_at", "product", "text"]
    assert list(LABELLED.columns) == ["review_id", "created_at", "text", "aspect_terms", "aspect_categories"]


def test_every_sample_object_reads_without_quarantine_and_the_labels_round_trip():
    for key, data in SAMPLE.items():
        spec = HOURLY if key.startswith(HOURLY.raw_prefix) else LABELLED
        records = read_records(spec, key, data)
        assert records.rejected == [], (key, records.rejected[:3])
        assert len(records) == len(rows(data)) > 0
        assert records.fields["text"].to_pylist() == [r["text"] for r in rows(data)]
    # the JSON columns give back exactly the generator's lists, commas and quotes included
    for i, (key, data) in enumerate(sorted(LABELLED_SAMPLE.items())):
        records = read_records(LABELLED, key, data)
        expected = labelled_frame(i, seed=SAMPLE_SEED)
        assert [json.loads(v) for v in records.fields["aspect_terms"].to_pylist()] == list(expected["aspect_terms"])
        assert [json.loads(v) for v in records.fields["aspect_categories"].to_pylist()] == list(expected["aspect_categories"])
        assert records.fields["review_id"].to_pylist() == list(expected["review_id"])
    assert any('"' in r["text"] or "," in r["text"] for r in labelled_rows())  # the quoting is exercised


def test_labels_follow_semeval_with_terms_in_the_text_and_consistent_categories():
    term_category = {t.term: t.category for kind in ("dine_in", "delivery") for c in _TERMS[kind].values() for t in c[1]}
    polarities = Counter()
    categories_seen = set()
    for row in labelled_rows():
        terms, categories = json.loads(row["aspect_terms"]), json.loads(row["aspect_categories"])
        assert all(set(t) == {"term", "polarity"} for t in terms) and all(set(c) == {"category", "polarity"} for c in categories)
        assert {t["polarity"] for t in terms} | {c["polarity"] for c in categories} <= set(POLARITIES)
        labelled = {c["category"] for c in categories}
        assert len(labelled) == len(categories)  # one label per category
        for t in terms:
            assert re.search(rf"\b{re.escape(t['term'])}\b", row["text"]), (t, row["text"])
            assert term_category[t["term"]] in labelled  # pasta -> food
        if terms or categories:
            assert categories  # every aspect has a category, implicit or not
        polarities.update(t["polarity"] for t in terms)
        categories_seen |= labelled
    assert categories_seen == set(CATEGORIES)
    share = {p: n / sum(polarities.values()) for p, n in polarities.items()}
    assert 0.48 < share["positive"] < 0.62 and 0.24 < share["negative"] < 0.36
    assert 0.06 < share["neutral"] < 0.14 and 0.02 < share["conflict"] < 0.08
    assert len(term_category) >= 60  # a vocabulary, not a handful of words


def test_about_five_percent_of_labelled_reviews_have_no_aspect_and_some_are_implicit():
    labelled = labelled_rows()
    assert len(labelled) == 2400 and len({r["review_id"] for r in labelled}) == 2400
    empty = [r for r in labelled if r["aspect_terms"] == "[]" and r["aspect_categories"] == "[]"]
    assert 0.03 < len(empty) / len(labelled) < 0.075
    implicit_only = [r for r in labelled if r["aspect_terms"] == "[]" and r["aspect_categories"] != "[]"]
    assert len(implicit_only) > 50  # "We waited forever." -> service negative, no term
    waited = [r for r in labelled if r["text"].startswith("We waited forever.")]
    assert waited and all({"category": "service", "polarity": "negative"} in json.loads(r["aspect_categories"]) for r in waited)


def test_labelled_objects_land_one_per_day_with_their_reviews_created_that_day():
    for i, (key, data) in enumerate(sorted(LABELLED_SAMPLE.items())):
        day = key[len(LABELLED.raw_prefix) :][:10].replace("/", "-")
        found = rows(data)
        assert len(found) == 600 and all(r["created_at"].startswith(day) for r in found)
        assert found[0]["review_id"] == f"L{600 * i + 1:06d}"
        assert [r["created_at"] for r in found] == sorted(r["created_at"] for r in found)


def test_hourly_keys_are_the_hour_of_created_at():
    counts = []
    for key, data in HOURLY_SAMPLE.items():
        y, m, d, h = re.search(r"(\d{4})/(\d{2})/(\d{2})/(\d{2})/", key).groups()
        found = rows(data)
        counts.append(len(found))
        assert all(re.fullmatch(rf"{y}-{m}-{d} {h}:\d\d:\d\d", r["created_at"]) for r in found), key
        assert all(r["review_id"] == f"R{y}{m}{d}T{h}-{j + 1:04d}" for j, r in enumerate(found))
    assert min(counts) >= 20 and max(counts) <= 40 and len(set(counts)) > 5


def test_product_mix_and_delivery_vocabulary():
    products = Counter(r["product"] for data in HOURLY_SAMPLE.values() for r in rows(data))
    assert set(products) == {"dine_in", "delivery"}
    assert 0.22 < products["delivery"] / sum(products.values()) < 0.38
    delivery = generate_reviews(400, seed=1, start="2026-11-20", end="2026-11-21", products={"delivery": 1.0})
    dine_in = generate_reviews(400, seed=1, start="2026-11-20", end="2026-11-21", products={"dine_in": 1.0})
    dining_room_words = {"waiter", "waitress", "terrace", "decor", "hostess", "patio"}
    delivery_words = {"courier", "driver", "rider", "packaging", "delivery time", "delivery fee", "app"}
    assert not any(mentions(t, dining_room_words) for t in delivery["text"])
    assert sum(mentions(t, delivery_words) for t in delivery["text"]) > 80
    assert not any(mentions(t, delivery_words) for t in dine_in["text"])
    assert set(delivery["product"]) == {"delivery"}


def test_a_sample_hour_is_what_the_producer_writes_for_that_hour_and_seed():
    hour = datetime(2026, 11, 24, 7, tzinfo=timezone.utc)
    obj, count = hourly_object(hour, seed=SAMPLE_SEED)
    assert HOURLY.raw_prefix + obj.key in HOURLY_SAMPLE and HOURLY_SAMPLE[HOURLY.raw_prefix + obj.key] == obj.data
    assert count == len(rows(obj.data))


def produce(lake_path, *args) -> int:
    return main(["produce", "reviews", "--lake", str(lake_path), *args])


def hourly_keys(lake: LocalLake) -> list[str]:
    return sorted(o.key[len(HOURLY.raw_prefix) :] for o in lake.list(HOURLY.raw_prefix))


def test_produce_continues_after_the_newest_hour_and_again_after_its_own(tmp_path, capsys):
    lake = LocalLake(tmp_path)
    for key, data in HOURLY_SAMPLE.items():
        lake.write_bytes(key, data)
    assert produce(tmp_path, "--hours", "3", "--seed", "7") == 0
    out = capsys.readouterr().out
    new = [k for k in hourly_keys(lake) if not k.startswith("2026/11/24/")]
    assert new == [f"2026/11/25/{h:02d}/reviews-2026-11-25T{h:02d}.csv" for h in range(3)]
    assert out.count("wrote ") == 3 and "reviews-2026-11-25T02.csv" in out
    assert produce(tmp_path, "--hours", "2", "--seed", "8") == 0
    assert hourly_keys(lake)[-2:] == [f"2026/11/25/{h:02d}/reviews-2026-11-25T{h:02d}.csv" for h in (3, 4)]
    for key in hourly_keys(lake)[-5:]:
        data = lake.read_bytes(HOURLY.raw_prefix + key)
        assert read_records(HOURLY, key, data).rejected == []
        assert all(r["created_at"].startswith(key[:13].replace("/", "-", 2).replace("/", " ")) for r in rows(data))


def test_produce_into_an_empty_lake_starts_after_the_sample_and_follows_a_later_hour(tmp_path, capsys):
    assert produce(tmp_path / "empty") == 0  # --hours defaults to 1
    assert hourly_keys(LocalLake(tmp_path / "empty")) == ["2026/11/25/00/reviews-2026-11-25T00.csv"]
    lake = LocalLake(tmp_path / "later")
    lake.write_bytes(HOURLY.raw_prefix + "2026/12/31/23/whatever.csv", b"review_id,created_at,product,text\n")
    lake.write_bytes(HOURLY.raw_prefix + "2026/12/01/05/other.csv", b"review_id,created_at,product,text\n")
    assert produce(tmp_path / "later", "--hours", "1", "--seed", "1") == 0
    assert "2027/01/01/00/reviews-2027-01-01T00.csv" in hourly_keys(lake)
    # the same seed and hour give the same object in any lake
    assert produce(tmp_path / "again", "--seed", "1", "--hours", "1") == 0
    assert produce(tmp_path / "other", "--seed", "1", "--hours", "1") == 0
    key = HOURLY.raw_prefix + "2026/11/25/00/reviews-2026-11-25T00.csv"
    assert LocalLake(tmp_path / "again").read_bytes(key) == LocalLake(tmp_path / "other").read_bytes(key)


def test_drift_topic_laptops_writes_laptop_reviews(tmp_path, capsys):
    assert produce(tmp_path, "--hours", "2", "--seed", "3", "--drift", "topic=laptops") == 0
    assert "drift topic=laptops,share=1" in capsys.readouterr().out
    texts = [r["text"] for o in LocalLake(tmp_path).list(HOURLY.raw_prefix) for r in rows(LocalLake(tmp_path).read_bytes(o.key))]
    assert len(texts) >= 40
    assert all(mentions(t, LAPTOP_WORDS) for t in texts)
    assert not any(mentions(t, RESTAURANT_WORDS) for t in texts)
    half = generate_reviews(1000, seed=2, start="2026-11-25", end="2026-11-26", topic="laptops", share=0.5)
    is_laptop = half["topic"] == "laptops"
    assert 0.44 < is_laptop.mean() < 0.56
    # restaurant reviews share "price" and "support" with laptops; the rest is laptop-only
    restaurant_terms = [t.term for kind in ("dine_in", "delivery") for c in _TERMS[kind].values() for t in c[1]]
    laptop_only = {w for w in LAPTOP_WORDS if not any(mentions(t, [w]) for t in restaurant_terms)}
    says_laptop = half["text"].map(lambda t: mentions(t, laptop_only))
    assert not says_laptop[~is_laptop].any() and says_laptop[is_laptop].mean() > 0.85
    assert not half.loc[is_laptop, "text"].map(lambda t: mentions(t, RESTAURANT_WORDS)).any()
    assert {c["category"] for cats in half.loc[half["topic"] == "laptops", "aspect_categories"] for c in cats} >= {"hardware", "software"}


def test_drift_topic_delivery_shifts_the_product_mix(tmp_path):
    assert produce(tmp_path, "--hours", "2", "--seed", "3", "--drift", "topic=delivery") == 0
    products = {r["product"] for o in LocalLake(tmp_path).list(HOURLY.raw_prefix) for r in rows(LocalLake(tmp_path).read_bytes(o.key))}
    assert products == {"delivery"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--drift", "topic=boats"], "unknown topic 'boats'; use topic=laptops or topic=delivery"),
        (["--drift", "share=0.5"], "names no topic"),
        (["--drift", "topic=laptops,share=2"], "share must be in (0, 1]"),
        (["--drift", "topic=laptops,share=0"], "share must be in (0, 1]"),
        (["--drift", "topic=laptops,share=lots"], "share='lots' is not a number"),
        (["--drift", "colour=red"], "cannot read 'colour=red'"),
        (["--drift", "topic"], "cannot read 'topic'"),
        (["--hours", "0"], "--hours must be >= 1"),
    ],
)
def test_bad_arguments_exit_2_with_a_message_and_write_nothing(tmp_path, capsys, args, message):
    assert produce(tmp_path, "--seed", "1", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("smartstream: ") and message in err
    assert hourly_keys(LocalLake(tmp_path)) == []


def test_drift_parsing():
    assert ReviewsDrift.parse("topic=laptops, share=0.8") == ReviewsDrift("laptops", 0.8)
    assert ReviewsDrift.parse("topic=delivery") == ReviewsDrift("delivery", 1.0)
    assert ReviewsDrift.parse("  ") is None
    with pytest.raises(ValueError, match="unknown topic"):
        generate_reviews(5, seed=1, start="2026-11-20", end="2026-11-21", topic="boats")
