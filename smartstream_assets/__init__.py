"""smartstream: raw S3 objects -> trusted -> features -> models -> predictions -> drift, in Dagster."""

from .definitions import defs

__all__ = ["defs"]
