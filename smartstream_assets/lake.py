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
  and rewriting it replaces it. Local temp files live in ``.tmp-writes/`` at the
  lake root, never inside a zone, so a glob over a zone cannot match them.
- ``write_bytes(..., if_match=etag)`` / ``if_absent=True`` is a compare-and-swap:
  it raises ``PreconditionFailed`` when the object changed (or exists) meanwhile
  (local: under a file lock; S3: conditional PUT, ``If-Match`` / ``If-None-Match``,
  which AWS and SeaweedFS enforce). Read-modify-write state uses it.
- Errors name the key and never carry credentials.
- ``browser_url`` is a link a browser can open: a presigned GET URL on S3, a URL
  under the local reports server (``make ui``) on a local lake, which serves only
  the ``reports/`` zone.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import threading
import time
import uuid
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LAKE = PROJECT_ROOT / ".smartstream" / "lake"
_TMP_PREFIX = ".tmp-"  # names the lake skips in listings
_TMP_DIR = ".tmp-writes"  # local temp files, at the root: outside every zone
_LOCK_DIR = ".tmp-locks"
_MULTIPART_BYTES = 8 << 20  # boto3's default multipart threshold
REPORTS_ZONE = "reports/"  # the only zone the local reports server serves
REPORTS_URL_ENV = "SMARTSTREAM_REPORTS_URL"
DEFAULT_REPORTS_URL = "http://127.0.0.1:3001/"
REPORT_URL_EXPIRY_ENV = "SMARTSTREAM_REPORT_URL_EXPIRY_SECONDS"
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit for a presigned URL: 604800


class LakeError(RuntimeError):
    """An object could not be listed, read or written; the message names the key."""


class PreconditionFailed(LakeError):
    """A conditional write lost: the object changed (or appeared) since it was read."""


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
    def write_bytes(self, key: str, data: bytes, *, if_match: str | None = None, if_absent: bool = False) -> None:
        """Atomically create or replace ``key``. With ``if_match`` the write only happens
        if the object's etag is still that one; with ``if_absent`` only if it does not
        exist; otherwise ``PreconditionFailed``."""

    @abstractmethod
    def list_level(self, prefix: str) -> tuple[list[ObjectInfo], list[str]]:
        """One level under the folder ``prefix`` (ending in ``/``): the objects directly
        in it and its sub-folders (as prefixes ending in ``/``), like S3's Delimiter."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """The object's listing entry, or None when it does not exist."""

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """(bytes, etag) of the same version of ``key``, or None when it does not exist."""
        info = self.stat(key)
        if info is None:
            return None
        return self.read_bytes(key), info.etag

    def remove_stale_temp(self, older_than_seconds: float = 3600) -> int:
        """Delete temp files left by killed writers; how many. Only local lakes have any."""
        return 0

    def read_parquet_metadata(self, key: str) -> tuple[dict[bytes, bytes], str] | None:
        """(key-value metadata of a Parquet object's schema, etag), reading only its footer
        where the backend allows; None when the object does not exist."""
        found = self.read_versioned(key)
        if found is None:
            return None
        return _schema_metadata(self, key, found[0]), found[1]

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

    def write_parquet(self, key: str, table: pa.Table, **conditions) -> None:
        self.write_bytes(key, parquet_bytes(table), **conditions)

    def describe(self, key: str) -> str:
        """Where ``key`` lives, for messages (no credentials)."""
        return f"{self.url.rstrip('/')}/{key}"

    def browser_url(self, key: str) -> str:
        """A URL a browser can open to read ``key`` (for links in metadata and alerts).
        Only keys under ``reports/`` are linkable on every backend. A bad setting raises
        ``ValueError`` naming its variable."""
        raise NotImplementedError(f"{type(self).__name__} cannot link {key!r} for a browser")


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


def _schema_metadata(lake: "Lake", key: str, data: bytes) -> dict[bytes, bytes]:
    try:
        return dict(pq.read_schema(pa.BufferReader(data)).metadata or {})
    except (pa.ArrowException, OSError) as exc:
        raise LakeError(f"cannot read Parquet object {lake.describe(key)}: {exc}") from exc


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


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


def reports_base_url() -> str:
    """$SMARTSTREAM_REPORTS_URL (default http://127.0.0.1:3001/), ending in ``/``: where
    the local lake's ``reports/`` folder is served (``make ui`` starts the server)."""
    raw = os.environ.get(REPORTS_URL_ENV, "").strip() or DEFAULT_REPORTS_URL
    try:
        parts = urllib.parse.urlsplit(raw)
        valid = parts.port is None or parts.port > 0  # .port raises on a bad port
        valid = valid and parts.scheme in ("http", "https") and bool(parts.hostname)
        valid = valid and not parts.query and not parts.fragment
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(f"{REPORTS_URL_ENV}={raw!r} is not an http(s) base URL like {DEFAULT_REPORTS_URL}")
    return raw if raw.endswith("/") else raw + "/"


def report_url_expiry_seconds() -> int:
    """$SMARTSTREAM_REPORT_URL_EXPIRY_SECONDS (default 604800 = 7 days, SigV4's maximum)."""
    raw = os.environ.get(REPORT_URL_EXPIRY_ENV, "").strip()
    if not raw:
        return MAX_PRESIGN_SECONDS
    try:
        seconds = int(raw)
    except ValueError:
        raise ValueError(f"{REPORT_URL_EXPIRY_ENV}={raw!r} is not a whole number of seconds") from None
    if not 1 <= seconds <= MAX_PRESIGN_SECONDS:
        raise ValueError(
            f"{REPORT_URL_EXPIRY_ENV}={seconds} is outside 1..{MAX_PRESIGN_SECONDS} seconds "
            "(a SigV4 presigned URL lasts at most 7 days)"
        )
    return seconds


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
            yield _local_info(key, st)

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise LakeError(f"cannot read {self.describe(key)}: {exc.strerror or exc}") from exc

    def write_bytes(self, key: str, data: bytes, *, if_match: str | None = None, if_absent: bool = False) -> None:
        path = self._path(key)
        tmp_dir = self.root / _TMP_DIR
        # The temp file sits outside every zone and has no .parquet suffix, so no
        # glob over a zone (DuckDB, Athena) ever counts a half-written or orphaned one.
        tmp = tmp_dir / f"{uuid.uuid4().hex}.partial"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp_dir.mkdir(exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if if_match is None and not if_absent:
                os.replace(tmp, path)
                return
            with self._lock(key):
                current = self.stat(key)
                if if_absent and current is not None:
                    raise PreconditionFailed(f"cannot create {self.describe(key)}: it exists already")
                if if_match is not None and (current is None or current.etag != if_match):
                    raise PreconditionFailed(f"cannot replace {self.describe(key)}: it changed since it was read")
                os.replace(tmp, path)
        except OSError as exc:
            raise LakeError(f"cannot write {self.describe(key)}: {exc.strerror or exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def _lock(self, key: str):
        """An exclusive lock per key, across processes (flock), for compare-and-swap."""
        lock_dir = self.root / _LOCK_DIR
        lock_dir.mkdir(parents=True, exist_ok=True)  # a lake whose root is not created yet
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        return _FileLock(lock_dir / f"{name}.lock")

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        with self._lock(key):  # no write can slip between the read and the stat
            return super().read_versioned(key)

    def read_parquet_metadata(self, key: str) -> tuple[dict[bytes, bytes], str] | None:
        with self._lock(key):
            info = self.stat(key)
            if info is None:
                return None
            try:
                return dict(pq.read_schema(self._path(key)).metadata or {}), info.etag
            except (pa.ArrowException, OSError) as exc:
                raise LakeError(f"cannot read Parquet object {self.describe(key)}: {exc}") from exc

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        return _local_info(key, st)

    def list_level(self, prefix: str) -> tuple[list[ObjectInfo], list[str]]:
        folder = self._path(prefix) if prefix else self.root
        objects, folders = [], []
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name.encode("utf-8"))
        except (FileNotFoundError, NotADirectoryError):
            return [], []
        for entry in entries:
            if entry.name.startswith(_TMP_PREFIX):
                continue
            key = f"{prefix}{entry.name}"
            if entry.is_dir():
                folders.append(f"{key}/")
            else:
                try:
                    objects.append(_local_info(key, entry.stat()))
                except FileNotFoundError:
                    continue
        return objects, folders

    def remove_stale_temp(self, older_than_seconds: float = 3600) -> int:
        """Temp files of writers killed mid-write: in ``.tmp-writes/`` when older than
        the limit (a live writer may be using a young one), and the ``.tmp-*`` files that
        earlier versions wrote beside the target inside the zones (always orphans)."""
        removed = 0
        cutoff = time.time() - older_than_seconds
        tmp_dir = self.root / _TMP_DIR
        if tmp_dir.is_dir():
            for entry in os.scandir(tmp_dir):
                try:
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    continue
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(_TMP_PREFIX)]
            for name in filenames:
                if name.startswith(_TMP_PREFIX):
                    Path(dirpath, name).unlink(missing_ok=True)
                    removed += 1
        return removed

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def browser_url(self, key: str) -> str:
        """$SMARTSTREAM_REPORTS_URL joined with ``key``'s path inside ``reports/``, each
        segment percent-quoted (``run_date=2026-10-01`` -> ``run_date%3D2026-10-01``).
        Only ``reports/`` is served, so any other key raises ``ValueError``."""
        rel = key[len(REPORTS_ZONE) :] if key.startswith(REPORTS_ZONE) else ""
        segments = rel.split("/")
        if not rel or any(s in ("", ".", "..") for s in segments):
            raise ValueError(f"{key!r} is not a file under {REPORTS_ZONE}: only that zone is served to browsers")
        return reports_base_url() + "/".join(urllib.parse.quote(s, safe="") for s in segments)


def _local_info(key: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=st.st_size,
        last_modified=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
        etag=f"{st.st_size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}",  # a replace changes the inode
    )


class _FileLock:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.fh = open(self.path, "a+b")
        fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
        self.fh.close()


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
        self._presigner = client  # an injected client presigns as it is configured; see browser_url

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
                    yield self._info(obj)
        except Exception as exc:
            raise LakeError(f"cannot list {self.describe(prefix)}: {_s3_reason(exc)}") from None

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except Exception as exc:
            raise LakeError(f"cannot read {self.describe(key)}: {_s3_reason(exc)}") from None

    def write_bytes(self, key: str, data: bytes, *, if_match: str | None = None, if_absent: bool = False) -> None:
        conditions = {}
        if if_match is not None:
            conditions["IfMatch"] = f'"{if_match}"'
        if if_absent:
            conditions["IfNoneMatch"] = "*"
        try:
            # One PUT below the multipart threshold (2.5x faster than upload_fileobj
            # for small objects), and for any conditional write (S3 checks the
            # condition on PutObject); multipart above it. Either way the object
            # appears only when the upload completes, so readers never see it torn.
            if len(data) < _MULTIPART_BYTES or conditions:
                self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data, **conditions)
            else:
                self.client.upload_fileobj(io.BytesIO(data), self.bucket, self.prefix + key)
        except Exception as exc:
            if _s3_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise PreconditionFailed(f"cannot write {self.describe(key)}: it changed since it was read") from None
            raise LakeError(f"cannot write {self.describe(key)}: {_s3_reason(exc)}") from None

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            return response["Body"].read(), response.get("ETag", "").strip('"')
        except Exception as exc:
            if _s3_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise LakeError(f"cannot read {self.describe(key)}: {_s3_reason(exc)}") from None

    def read_parquet_metadata(self, key: str) -> tuple[dict[bytes, bytes], str] | None:
        # The footer is at the end: one ranged GET of the tail instead of the whole object.
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key, Range="bytes=-65536")
            tail, etag = response["Body"].read(), response.get("ETag", "").strip('"')
        except Exception as exc:
            if _s3_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise LakeError(f"cannot read {self.describe(key)}: {_s3_reason(exc)}") from None
        footer = int.from_bytes(tail[-8:-4], "little") if len(tail) >= 12 and tail.endswith(b"PAR1") else -1
        if footer < 0 or footer + 8 > len(tail):
            return super().read_parquet_metadata(key)  # footer larger than the tail read
        # A reader of the schema only needs the footer; the leading magic makes it a file.
        return _schema_metadata(self, key, b"PAR1" + tail[-(footer + 8) :]), etag

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except Exception as exc:
            if _s3_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise LakeError(f"cannot stat {self.describe(key)}: {_s3_reason(exc)}") from None
        return ObjectInfo(
            key=key,
            size=head["ContentLength"],
            last_modified=head["LastModified"].astimezone(timezone.utc),
            etag=head.get("ETag", "").strip('"'),
        )

    def list_level(self, prefix: str) -> tuple[list[ObjectInfo], list[str]]:
        kwargs = {"Bucket": self.bucket, "Prefix": self.prefix + prefix, "Delimiter": "/"}
        objects, folders = [], []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                **kwargs, PaginationConfig={"PageSize": self.page_size}
            ):
                folders += [p["Prefix"][len(self.prefix) :] for p in page.get("CommonPrefixes", ())]
                objects += [self._info(obj) for obj in page.get("Contents", ())]
        except Exception as exc:
            raise LakeError(f"cannot list {self.describe(prefix)}: {_s3_reason(exc)}") from None
        return objects, folders

    def _info(self, obj: dict) -> ObjectInfo:
        return ObjectInfo(
            key=obj["Key"][len(self.prefix) :],
            size=obj["Size"],
            last_modified=obj["LastModified"].astimezone(timezone.utc),
            etag=obj.get("ETag", "").strip('"'),
        )

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)
        except Exception as exc:
            raise LakeError(f"cannot delete {self.describe(key)}: {_s3_reason(exc)}") from None

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def browser_url(self, key: str) -> str:
        """A presigned GET URL for ``key``, valid $SMARTSTREAM_REPORT_URL_EXPIRY_SECONDS
        (default and maximum 7 days; temporary credentials end it sooner). It carries the
        access key id and a signature, never the secret key.

        Signed with SigV4 by a client from the same boto3 session as ``client`` (same
        endpoint, region and credentials): boto3 presigns with SigV2 unless a client
        asks for ``s3v4``, and the lake's own client is left exactly as it is."""
        expires = report_url_expiry_seconds()
        try:
            if self._presigner is None:
                from botocore.config import Config

                with _SESSION_LOCK:
                    self._presigner = _boto_session().client("s3", config=Config(signature_version="s3v4"))
            return self._presigner.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self.prefix + key}, ExpiresIn=expires
            )
        except Exception as exc:
            raise LakeError(f"cannot presign {self.describe(key)}: {_s3_reason(exc)}") from None


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


def _s3_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


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
