"""Simulated producers: the stand-in for DMS (or an app) writing raw objects into S3.

One producer per table that has one; adding a domain's producer is one registry
entry. ``data/generate.py`` writes their sample history into ``data/raw/``, the
demo copies that into the lake, and ``smartstream produce`` streams new objects
into a lake's raw zone at a given rate so the raw sensors have something to see.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from ..lake import Lake
from ..tables import TableSpec
from .base import RawObject
from .co2 import Co2Drift, Co2Producer
from .employees import Drift, EmployeesProducer
from .reviews import LabelledReviewsProducer, ReviewsDrift, ReviewsProducer, produce_reviews
from .vitals import VitalsLabelledProducer, VitalsProducer

PRODUCERS = {"employees": EmployeesProducer, "co2": Co2Producer, "reviews": ReviewsProducer, "reviews_labelled": LabelledReviewsProducer,
             "vitals": VitalsProducer, "vitals_labelled": VitalsLabelledProducer}  # fmt: skip
SAMPLE_SEED = 42

__all__ = ["Co2Drift", "Drift", "PRODUCERS", "RawObject", "ReviewsDrift", "produce", "produce_reviews", "sample_objects", "write_samples"]


def sample_objects(tables: dict[str, TableSpec]) -> Iterator[tuple[str, bytes]]:
    """(lake key, bytes) of the sample history of every table that has a producer."""
    for name, producer_cls in PRODUCERS.items():
        spec = tables[name]
        for obj in producer_cls(spec, seed=SAMPLE_SEED).history():
            yield spec.raw_prefix + obj.key, obj.data


def write_samples(folder: Path, tables: dict[str, TableSpec]) -> list[Path]:
    """Write the sample history under ``folder`` (a lake-shaped tree: raw/...), replacing
    what the producers wrote before."""
    written = []
    for name in PRODUCERS:
        for old in (folder / tables[name].raw_prefix).rglob("*"):
            if old.is_file():
                old.unlink()
    for key, data in sample_objects(tables):
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


def produce(
    lake: Lake,
    spec: TableSpec,
    *,
    files: int,
    interval: float,
    events: int,
    seed: int,
    drift: Drift | None = None,
    compress: bool = False,
    log: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Write ``files`` CDC objects of ``events`` changes each into the raw zone, one every
    ``interval`` seconds (``files=0``: until interrupted), dated now (UTC).

    The changes continue the lake's current state when there is one (so updates and
    deletes hit employees that exist), else the end of the sample history.
    """
    if spec.name not in STREAMING:
        raise ValueError(f"no CDC producer for table {spec.name!r}; producers exist for: {', '.join(STREAMING)}")
    producer = PRODUCERS[spec.name](spec, drift=drift)
    sim = producer.simulator(_current_frame(lake, spec), seed)
    written: list[str] = []
    while not files or len(written) < files:
        obj = producer.next_object(sim, datetime.now(timezone.utc), events, compress=compress)
        key = spec.raw_prefix + obj.key
        lake.write_bytes(key, obj.data)
        written.append(key)
        log(f"wrote {lake.describe(key)} ({events} changes)")
        if not files or len(written) < files:
            sleep(interval)
    return written


STREAMING = ("employees",)


def produce_readings(
    lake: Lake, spec: TableSpec, *, weeks: int, seed: int, drift: Co2Drift | None = None, log: Callable[[str], None] = print
) -> str:
    """One object with the next ``weeks`` readings of every station of table ``co2``,
    continuing the lake's current state (else the sample history), landed now."""
    from .co2 import mauna_loa, next_object

    current = _current_frame(lake, spec)
    if current is None:
        current = mauna_loa()
    obj = next_object(current, weeks, seed=seed, drift=drift, now=datetime.now(timezone.utc))
    key = spec.raw_prefix + obj.key
    lake.write_bytes(key, obj.data)
    log(f"wrote {lake.describe(key)} ({weeks} weeks x {current['station'].nunique()} stations)")
    return key


def _current_frame(lake: Lake, spec: TableSpec):
    from ..delta import read_current

    found = read_current(lake, spec.name)
    return None if found is None else found.to_pandas()
