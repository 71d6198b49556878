"""smartstream: raw S3 objects -> trusted -> features -> models -> predictions -> drift, in Dagster.

``defs`` (the code location's Definitions) is loaded on first access, so that the
pure modules (parsers, lake, benchmarks, the ``smartstream`` CLI) do not import
Dagster. ``__dir__`` lists it, which is how ``dagster -m smartstream_assets`` finds it.
"""

__all__ = ["defs"]


def __getattr__(name):
    if name == "defs":
        from .definitions import defs

        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + ["defs"])
