"""smartstream: raw S3 objects -> trusted -> features -> models -> predictions -> drift, in Dagster.

``defs`` (the code location's Definitions) is loaded on first access, so that the
pure modules (parsers, lake, benchmarks, the ``smartstream`` CLI) do not import
Dagster. ``__dir__`` lists it, which is how ``dagster -m smartstream_assets`` finds it.
"""

__all__ = ["defs"]


def _arrow_memory_pool() -> None:
    """Arrow's buffers from jemalloc, unless ``ARROW_DEFAULT_MEMORY_POOL`` chooses a pool.

    pyarrow's default on Linux is mimalloc, which soon hands freed pages back to the
    system, so the next batch faults them in again (costly on the VMs this runs on). A
    3M-event backfill (``benchmarks/ingest.py``'s work) took a median 2.85 s with jemalloc
    against 3.27 s with mimalloc, 5 alternating runs each, and peaked ~120 MiB lower.
    """
    import os

    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    import pyarrow as pa

    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow built without jemalloc (Windows): its default stays
        pass


_arrow_memory_pool()


def __getattr__(name):
    if name == "defs":
        from .definitions import defs

        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + ["defs"])
