"""What every simulated producer yields, and the loop that streams it into a lake."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RawObject:
    key: str  # relative to the table's raw prefix
    data: bytes
