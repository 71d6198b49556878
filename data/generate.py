"""Regenerate the sample raw files under data/raw/ (seeded: the same bytes every time).

    .venv/bin/python data/generate.py

The generator is smartstream_assets.producers (the simulated HR table behind DMS);
the demo copies data/raw/ into the lake's raw zone, and a test checks that the
files here are exactly what the generator writes.
"""

from pathlib import Path

from smartstream_assets.producers import write_samples
from smartstream_assets.tables import load_tables

if __name__ == "__main__":
    folder = Path(__file__).resolve().parent
    paths = write_samples(folder, load_tables(extra=""))
    size = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files ({size / 1024:.0f} KiB) under {folder / 'raw'}")
