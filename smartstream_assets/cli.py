"""The ``smartstream`` command.

    smartstream produce employees --files 10 --interval 5 --events 200
    smartstream produce employees --drift age=+8,city=Pune,tier=-1   # inject drift

``produce`` is the stand-in for a producer writing into S3: it streams generated
CDC files into the lake's raw zone (``--lake``, else $SMARTSTREAM_LAKE, else the
local default) so the raw sensors pick them up. Dagster's own CLI does the rest
(``dagster asset materialize``, ``dagster sensor preview``).
"""

from __future__ import annotations

import argparse
import sys
import time

from .lake import LakeError, lake_from_url
from .tables import RegistryError, load_tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smartstream", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    produce = commands.add_parser("produce", help="stream generated CDC files into the lake's raw zone")
    produce.add_argument("table", nargs="?", default="employees")
    produce.add_argument("--files", type=int, default=10, help="how many files (0: until interrupted)")
    produce.add_argument("--interval", type=float, default=5.0, help="seconds between files")
    produce.add_argument("--events", type=int, default=200, help="changes per file")
    produce.add_argument("--seed", type=int, default=None, help="default: the current time")
    produce.add_argument("--drift", default="", help="e.g. age=+8,city=Pune,tier=-1[,share=0.8]")
    produce.add_argument("--gzip", action="store_true", help="write .csv.gz like DMS with CompressionType GZIP")
    produce.add_argument("--lake", default=None, help="s3://bucket/prefix or a folder")
    args = parser.parse_args(argv)
    try:
        return _produce(args)
    except (LakeError, RegistryError, ValueError) as exc:
        print(f"smartstream: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _produce(args) -> int:
    from .producers import produce  # pandas: only when producing

    tables = load_tables()
    if args.table not in tables:
        raise ValueError(f"unknown table {args.table!r}; the registry has: {', '.join(tables)}")
    if args.files < 0 or args.events <= 0 or args.interval < 0:
        raise ValueError("--files must be >= 0, --events > 0 and --interval >= 0")
    lake = lake_from_url(args.lake)
    drift = parse_drift(args.drift)
    rate = args.events / args.interval if args.interval else float("inf")
    print(
        f"producing {args.files or 'unlimited'} files of {args.events} changes every {args.interval:g}s "
        f"(~{rate:,.0f} changes/s) into {lake.describe(tables[args.table].raw_prefix)}"
        + (f" with drift {drift}" if drift else "")
    )
    seed = args.seed if args.seed is not None else int(time.time())
    produce(lake, tables[args.table], files=args.files, interval=args.interval, events=args.events, seed=seed, drift=drift, compress=args.gzip)
    return 0


def parse_drift(text: str):
    """``age=+8,city=Pune,tier=-1,share=0.8`` -> Drift; empty -> None."""
    from .producers import Drift

    if not text.strip():
        return None
    fields = {"age": ("age_shift", int), "city": ("city", str), "tier": ("payment_tier_shift", int), "share": ("share", float)}
    kwargs = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name.strip() not in fields or not value:
            raise ValueError(f"--drift: cannot read {part!r}; use age=+N, city=NAME, tier=+-N, share=0..1")
        attr, kind = fields[name.strip()]
        try:
            kwargs[attr] = kind(value.strip())
        except ValueError:
            raise ValueError(f"--drift: {name}={value!r} is not a {kind.__name__}") from None
    return Drift(**kwargs)


if __name__ == "__main__":
    sys.exit(main())
