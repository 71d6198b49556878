"""Aspect-based sentiment: the three scores the reviews model learns, from annotations,
and cheap features of a text. Pure (json, numpy, pandas).

Annotations are SemEval-2014 Task 4's: aspect terms (``{"term", "polarity"}``) and
aspect categories (``{"category", "polarity"}``), polarity positive / negative /
neutral / conflict. ``absa_targets`` is the one place the targets are computed:

- ``sentiment_score``: the mean over all terms and categories of +1 (positive),
  -1 (negative), 0 (neutral, conflict);
- ``engagement_score``: min(1, (terms + categories) / 6);
- ``implicitness_degree``: max(0, categories - terms) / categories (0 without categories).

A row without any aspect has no targets (NaN): it is not trained on. A row whose
annotations are not a JSON list of such objects is refused with the reason
(``AnnotationError``), never guessed.
"""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree

import numpy as np
import pandas as pd

OUTPUTS = ("sentiment_score", "engagement_score", "implicitness_degree")
POLARITY_VALUE = {"positive": 1.0, "negative": -1.0, "neutral": 0.0, "conflict": 0.0}
ENGAGEMENT_ASPECTS = 6


class AnnotationError(ValueError):
    """Aspect annotations that are not what SemEval-2014 Task 4 defines."""


def parse_aspects(value, field: str, name_key: str) -> list[dict]:
    """A JSON list of ``{name_key: str, "polarity": ...}`` (a list as is; empty/None: [])."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or (isinstance(value, str) and not value.strip()):
        return []
    items = value
    if isinstance(value, (str, bytes)):
        try:
            items = json.loads(value)
        except json.JSONDecodeError as exc:
            raise AnnotationError(f"{field} is not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(items, list):
        raise AnnotationError(f"{field} must be a JSON list (got {type(items).__name__})")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get(name_key), str) or not item[name_key].strip():
            raise AnnotationError(f"{field}[{i}] must be an object with a non-empty {name_key!r}")
        if item.get("polarity") not in POLARITY_VALUE:
            raise AnnotationError(
                f"{field}[{i}] polarity {item.get('polarity')!r} is not one of {', '.join(POLARITY_VALUE)}"
            )
    return items


def absa_targets(aspect_terms, aspect_categories) -> dict[str, float]:
    """The three targets of one review's annotations (NaN for each when it has no aspect)."""
    terms = parse_aspects(aspect_terms, "aspect_terms", "term")
    categories = parse_aspects(aspect_categories, "aspect_categories", "category")
    n_terms, n_categories = len(terms), len(categories)
    if n_terms + n_categories == 0:
        return dict.fromkeys(OUTPUTS, float("nan"))
    polarities = [POLARITY_VALUE[a["polarity"]] for a in (*terms, *categories)]
    return {
        "sentiment_score": float(np.mean(polarities)),
        "engagement_score": min(1.0, (n_terms + n_categories) / ENGAGEMENT_ASPECTS),
        "implicitness_degree": max(0, n_categories - n_terms) / n_categories if n_categories else 0.0,
    }


def targets_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``frame`` with the three targets added, and the rows refused (with ``reason``)."""
    rows, bad = [], []
    for i, (terms, categories) in enumerate(zip(frame["aspect_terms"], frame["aspect_categories"])):
        try:
            rows.append(absa_targets(terms, categories))
        except AnnotationError as exc:
            rows.append(dict.fromkeys(OUTPUTS, float("nan")))
            bad.append((i, str(exc)))
    out = frame.reset_index(drop=True).join(pd.DataFrame(rows, columns=list(OUTPUTS)))
    refused_at = [i for i, _ in bad]
    refused = out.iloc[refused_at].drop(columns=list(OUTPUTS)).assign(reason=[r for _, r in bad])
    return out.drop(index=refused_at).reset_index(drop=True), refused.reset_index(drop=True)


# ---------------------------------------------------------------- cheap text features

TEXT_FEATURES = ("n_words", "n_chars", "n_clauses", "n_negations", "n_exclamations")
_WORD = re.compile(r"[A-Za-z0-9']+")
_CLAUSE = re.compile(r",|;|\bbut\b|\band\b|\balso\b|\bwhile\b|\bthough\b|[.!?](?=\s+\S)", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|no|never|nothing|nobody|none|hardly|without)\b|n't\b", re.IGNORECASE)


def text_features(texts) -> pd.DataFrame:
    """Counts a tree can use beside the embedding: words, characters, clauses (commas,
    conjunctions, sentence breaks: more clauses, more aspects), negations, exclamation marks."""
    values = ["" if t is None else str(t) for t in texts]
    return pd.DataFrame(
        {
            "n_words": [len(_WORD.findall(t)) for t in values],
            "n_chars": [len(t) for t in values],
            "n_clauses": [1 + len(_CLAUSE.findall(t)) for t in values],
            "n_negations": [len(_NEGATION.findall(t)) for t in values],
            "n_exclamations": [t.count("!") for t in values],
        },
        dtype="float64",
    )


def model_inputs(texts, vectors) -> pd.DataFrame:
    """What the reviews model reads of a text: its embedding (``emb_000`` .. ``emb_383``)
    and ``text_features``; the one function training, batch scoring and the served
    pyfunc build their inputs with."""
    from .embeddings import embedding_frame

    return embedding_frame(vectors).join(text_features(texts))


# ---------------------------------------------------------------- SemEval-2014 Task 4 XML


def read_semeval(path) -> pd.DataFrame:
    """SemEval-2014 Task 4 training XML → review_id, text, aspect_terms, aspect_categories
    (JSON lists as the ``reviews_labelled`` table holds them). Laptop files have no
    categories: their lists are empty."""
    root = ElementTree.parse(path).getroot()
    rows = []
    for sentence in root.iter("sentence"):
        terms = [{"term": t.get("term"), "polarity": t.get("polarity")} for t in sentence.iter("aspectTerm")]
        categories = [{"category": c.get("category"), "polarity": c.get("polarity")} for c in sentence.iter("aspectCategory")]
        rows.append(
            {"review_id": str(sentence.get("id")), "text": (sentence.findtext("text") or "").strip(),
             "aspect_terms": json.dumps(terms), "aspect_categories": json.dumps(categories)}
        )  # fmt: skip
    return pd.DataFrame(rows, columns=["review_id", "text", "aspect_terms", "aspect_categories"])
