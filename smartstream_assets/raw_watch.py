"""Which ingest dates of a raw prefix have new objects: the logic of the raw sensors.

A tick must stay fast on a prefix of any size and a restart must never process
the same objects twice. How:

- Incremental ticks list only keys after the highest key seen (S3 ``StartAfter``),
  so a tick costs O(new objects), not O(prefix). Producers such as DMS write keys
  in increasing order (timestamped file names, dated folders).
- Keys can still appear below that mark (DMS puts ``LOAD*.csv`` next to CDC files
  named by date, and ``L`` sorts after digits; a late file in an old folder), so
  every ``full_scan_seconds`` a tick lists the whole prefix (paginated) and
  reconciles.
- Each ingest date keeps a digest of its objects: their count and an
  order-independent sum of per-object hashes (key, size, etag), the same whether
  built incrementally or by a full scan. A date whose digest changed is requested
  again; the run key is ``<table>:<date>:<count>:<digest>``, so the same content
  never gets two runs even if the cursor is lost (Dagster drops repeated run keys).
- The trusted partition records the same digest of the objects it was built from
  (``ingestion.objects_digest``), so a date already ingested from exactly the objects
  seen (after ``make demo``, or a cursor reset) is skipped, not re-ingested
  (``triage``).

LastModified is not the cursor: SeaweedFS has 1-second resolution, and keys written
in the same second would be skipped by a strict ``>``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from .ingestion import ingest_date_of, object_hash
from .lake import Lake

_MASK = (1 << 64) - 1


@dataclass
class WatchCursor:
    high_water: str | None = None  # highest key seen
    last_full_scan: float = 0.0  # epoch seconds
    dates: dict[str, tuple[int, int]] = field(default_factory=dict)  # date -> (count, digest)

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "hw": self.high_water,
                "full": self.last_full_scan,
                "dates": {d: [c, f"{h:016x}"] for d, (c, h) in sorted(self.dates.items())},
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> "WatchCursor":
        if not text:
            return cls()
        try:
            doc = json.loads(text)
            return cls(
                high_water=doc.get("hw"),
                last_full_scan=float(doc.get("full", 0.0)),
                dates={d: (int(c), int(h, 16)) for d, (c, h) in doc.get("dates", {}).items()},
            )
        except (ValueError, TypeError, AttributeError):
            return cls()  # unreadable cursor: start over; run keys prevent double runs


@dataclass
class DateRequest:
    day: date
    objects: int
    digest: int

    def run_key(self, table: str) -> str:
        return f"{table}:{self.day.isoformat()}:{self.objects}:{self.digest:016x}"

    @property
    def content_digest(self) -> str:
        """As ``ingestion.objects_digest`` writes it into the trusted partition."""
        return f"{self.objects}:{self.digest:016x}"


@dataclass
class WatchResult:
    requests: list[DateRequest]
    cursor: WatchCursor
    listed: int
    full_scan: bool


def watch(lake: Lake, prefix: str, cursor: WatchCursor, *, now: float, full_scan_seconds: float) -> WatchResult:
    """List what is new under ``prefix`` since ``cursor``; one request per changed date."""
    full = cursor.high_water is None or now - cursor.last_full_scan >= full_scan_seconds
    if full:
        dates: dict[str, tuple[int, int]] = {}
        start_after = None
    else:
        dates = dict(cursor.dates)
        start_after = cursor.high_water
    listed, high_water = 0, cursor.high_water
    for obj in lake.list(prefix, start_after=start_after):
        if obj.key.endswith("/"):
            continue
        listed += 1
        day = ingest_date_of(obj, prefix).isoformat()
        count, digest = dates.get(day, (0, 0))
        dates[day] = (count + 1, (digest + object_hash(obj)) & _MASK)
        if high_water is None or obj.key.encode() > high_water.encode():
            high_water = obj.key
    changed = sorted(d for d, value in dates.items() if cursor.dates.get(d) != value)
    new_cursor = WatchCursor(
        high_water=high_water,
        last_full_scan=now if full else cursor.last_full_scan,
        dates=dates,
    )
    requests = [DateRequest(date.fromisoformat(d), *dates[d]) for d in changed]
    return WatchResult(requests=requests, cursor=new_cursor, listed=listed, full_scan=full)


@dataclass
class Triage:
    run: list[DateRequest] = field(default_factory=list)  # to ingest
    ingested: list[DateRequest] = field(default_factory=list)  # already built from exactly these objects
    before_start: list[DateRequest] = field(default_factory=list)  # before the table's first partition
    not_yet: list[DateRequest] = field(default_factory=list)  # partition does not exist yet (clock skew)


def triage(
    requests: list[DateRequest], *, first_day: date, last_day: date, ingested_digest: Callable[[date], str | None]
) -> Triage:
    """Which changed dates get a run. ``ingested_digest(day)`` is the digest the day's
    latest trusted materialisation recorded (None if none)."""
    out = Triage()
    for req in requests:
        if req.day < first_day:
            out.before_start.append(req)
        elif req.day > last_day:
            out.not_yet.append(req)
        elif ingested_digest(req.day) == req.content_digest:
            out.ingested.append(req)
        else:
            out.run.append(req)
    return out
