"""Dagster resources. Nothing secret lives here: S3 credentials, endpoint and region
come from boto3's standard chain (AWS_* variables, profiles, instance roles)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field, PrivateAttr

from .lake import Lake, lake_from_url


class LakeResource(dg.ConfigurableResource):
    """The lake: ``s3://bucket/prefix`` or a local folder."""

    url: str = Field(
        default="",
        description="s3://bucket/prefix or a local path; empty: $SMARTSTREAM_LAKE, else .smartstream/lake",
    )
    _lake: Lake | None = PrivateAttr(default=None)

    def get(self) -> Lake:
        if self._lake is None:
            self._lake = lake_from_url(self.url or None)
        return self._lake
