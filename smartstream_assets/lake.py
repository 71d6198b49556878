"""One lake interface over a local folder and any S3 endpoint.

Keys are relative ("raw/hr/employees/LOAD00000001.csv") and mean the same on both
backends. Guarantees every caller relies on:

- ``list`` pages through the listing (S3 returns at most 1000 keys a call) and
  yields only keys after ``start_after``. The local lake and AWS S3 yield them in
  UTF-8 byte order; some S3 servers (SeaweedFS) list folder by folder, so callers
  must not depend on the order.
- ``write_bytes`` is atomic: a reader sees the old object or the new one, never a
  torn one (local: temp file + ``os.replace``; S3: a PUT is atomic per object).
  Dataset partitions are written as ONE object each, so a partition is atomic too
  and rewriting it replaces it.
- Errors name the key and never carry credentials.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LAKE = PROJECT_ROOT / ".smartstream" / "lake"
_TMP_PREFIX = ".tmp-"
_MULTIPART_BYTES = 8 << 20  # boto3's default multipart threshold


class LakeError(RuntimeError):
    """An object could not be listed, read or written; the message names the key."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime  # timezone-aware, UTC
    etag: str


class Lake(ABC):
    """Storage for every zone of the lake (raw, trusted, current, quarantine, ...)."""

    url: str

    @abstractmethod
    def list(self, prefix: str, start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix`` and sorts after ``start_after`` (see
        the module docstring on order)."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None:
        """Atomically create or replace ``key``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    def read_parquet(self, key: str) -> pa.Table:
        data = self.read_bytes(key)
        try:
            return parquet_from_bytes(data)
        except (pa.ArrowException, OSError) as exc:
            raise LakeError(f"cannot read Parquet object {self.describe(key)}: {exc}") from exc

    def write_parquet(self, key: str, table: pa.Table) -> None:
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        self.write_bytes(key, sink.getvalue())

    def describe(self, key: str) -> str:
        """Where ``key`` lives, for messages (no credentials)."""
        return f"{self.url.rstrip('/')}/{key}"


def parquet_from_bytes(data: bytes) -> pa.Table:
    """A Parquet file held in memory, as a table.

    Not ``pq.read_table``: its dataset scanner lets a pool thread drop the last
    reference to the Python ``bytes`` late, and if that happens while the
    interpreter shuts down the process aborts ("terminate called without an
    active exception", apache/arrow#34314; seen here in ~1 of 3 loaded runs).
    ``ParquetFile.read`` is synchronous: the buffer is released on this thread.
    """
    with pq.ParquetFile(pa.BufferReader(data)) as parquet:
        return parquet.read()


def lake_from_url(url: str | None = None) -> Lake:
    """``s3://bucket/prefix`` or a local path; empty means $SMARTSTREAM_LAKE, then the default."""
    url = url or os.environ.get("SMARTSTREAM_LAKE") or str(DEFAULT_LAKE)
    if url.startswith("s3://"):
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise LakeError(f"lake url {url!r} names no bucket")
        return S3Lake(bucket, prefix)
    if url.startswith("file://"):
        url = url[len("file://") :]
    return LocalLake(Path(url))


class LocalLake(Lake):
    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise LakeError(f"key {key!r} escapes the lake root")
        return path

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[ObjectInfo]:
        # S3 semantics: a prefix is a string prefix, not a folder, so walk from the
        # deepest folder the prefix names and filter by the full string.
        base = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        if not base.is_dir():
            return
        keys = []
        for dirpath, dirnames, filenames in os.walk(base):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            folder = "" if rel == "." else f"{rel}/"
            # Like S3's StartAfter, skip what sorts before start_after without reading
            # it: every key under folder/d/ is below start_after unless start_after is
            # inside that folder. Keeps an incremental sensor tick O(new keys) on
            # dated folders instead of O(prefix).
            dirnames[:] = [
                d
                for d in dirnames
                if not d.startswith(_TMP_PREFIX)
                and (start_after is None or f"{folder}{d}/" > start_after or start_after.startswith(f"{folder}{d}/"))
            ]
            for name in filenames:
                if name.startswith(_TMP_PREFIX):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix) and (start_after is None or key > start_after):
                    keys.append(key)
        keys.sort(key=lambda k: k.encode("utf-8"))
        for key in keys:
            try:
                st = (self.root / key).stat()
            except FileNotFoundError:  # removed between walk and stat
                continue
            yield ObjectInfo(
                key=key,
                size=st.st_size,
                last_modified=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
                etag=f"{st.st_size:x}-{st.st_mtime_ns:x}",
            )

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise LakeError(f"cannot read {self.describe(key)}: {exc.strerror or exc}") from exc

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}-{path.name}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise LakeError(f"cannot write {self.describe(key)}: {exc.strerror or exc}") from exc

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


class S3Lake(Lake):
    """An S3 bucket (AWS or any S3 endpoint) under an optional prefix.

    The client is boto3's default: credentials, region and endpoint come from the
    standard variables (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL_S3, ...) or profiles and
    instance roles, so nothing secret passes through smartstream's configuration.
    """

    def __init__(self, bucket: str, prefix: str = "", client=None, page_size: int = 1000):
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}"
        self.page_size = page_size
        self._client = client

    @property
    def client(self):
        if self._client is None:
            from botocore.config import Config

            with _SESSION_LOCK:  # boto3 sessions are not thread-safe
                self._client = _boto_session().client(
                    "s3", config=Config(retries={"max_attempts": 5, "mode": "standard"})
                )
        return self._client

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[ObjectInfo]:
        kwargs = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        if start_after:
            kwargs["StartAfter"] = self.prefix + start_after
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(**kwargs, PaginationConfig={"PageSize": self.page_size}):
                for obj in page.get("Contents", ()):
                    if start_after and obj["Key"] <= kwargs["StartAfter"]:
                        # AWS lists in UTF-8 byte order; SeaweedFS lists folder by folder,
                        # so its StartAfter can return keys that sort before the marker
                        # ("d/a-b" after "d/a/x"). Counting those again would make the
                        # sensor request their date on every tick.
                        continue
                    yield ObjectInfo(
                        key=obj["Key"][len(self.prefix) :],
                        size=obj["Size"],
                        last_modified=obj["LastModified"].astimezone(timezone.utc),
                        etag=obj.get("ETag", "").strip('"'),
                    )
        except Exception as exc:
            raise LakeError(f"cannot list {self.describe(prefix)}: {_s3_reason(exc)}") from None

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except Exception as exc:
            raise LakeError(f"cannot read {self.describe(key)}: {_s3_reason(exc)}") from None

    def write_bytes(self, key: str, data: bytes) -> None:
        try:
            # One PUT below the multipart threshold (2.5x faster than upload_fileobj
            # for small objects); multipart above it. Either way the object appears
            # only when the upload completes, so readers never see it torn.
            if len(data) < _MULTIPART_BYTES:
                self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)
            else:
                self.client.upload_fileobj(io.BytesIO(data), self.bucket, self.prefix + key)
        except Exception as exc:
            raise LakeError(f"cannot write {self.describe(key)}: {_s3_reason(exc)}") from None

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)
        except Exception as exc:
            raise LakeError(f"cannot delete {self.describe(key)}: {_s3_reason(exc)}") from None

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise LakeError(f"cannot stat {self.describe(key)}: {_s3_reason(exc)}") from None


# What boto3 reads from the environment to build a session.
_BOTO_ENV = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)  # fmt: skip
_SESSIONS: dict[str, object] = {}
_SESSION_LOCK = threading.Lock()


def _boto_session():
    """One boto3 session per process and environment: a new session costs ~70 ms (it
    loads botocore's service data), a client from an existing one ~6 ms, and a sensor
    builds its lake on every tick. Keyed by a digest of the AWS_* variables, so a
    changed environment gets a fresh session and no secret is kept as a key."""
    import boto3

    key = hashlib.sha256("\0".join(os.environ.get(v, "") for v in _BOTO_ENV).encode()).hexdigest()
    session = _SESSIONS.get(key)
    if session is None:
        session = _SESSIONS[key] = boto3.session.Session()
    return session


def _s3_reason(exc: Exception) -> str:
    """A short reason for an S3 failure: the error code and message, never request
    headers or credentials (we re-raise ``from None`` for the same reason)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = err.get("Code", "error")
        message = err.get("Message", "")
        return f"{code} (HTTP {status}) {message}".strip()
    # transfer errors wrap the ClientError
    inner = getattr(exc, "last_exception", None) or exc.__cause__ or exc.__context__
    if inner is not None and inner is not exc and getattr(inner, "response", None):
        return _s3_reason(inner)
    return f"{type(exc).__name__}: {exc}"
